export { SessionsService, type SessionsDeps, type SessionView, type ActiveSession } from './service.js';
export { describeDevice } from './device.js';
export { SignInFlow, type SignInDeps, type SignInResult, type SignInPlace, type Authenticated } from './sign-in.js';
export { DeviceCookies, DEVICE_COOKIE_OPTIONS, DEVICE_TTL_MS, DEVICES_PER_COOKIE, DEVICES_PER_ACCOUNT, parseDeviceCookie } from './devices.js';
export { noThrottle, noSecondFactor, type SignInThrottle, type ThrottleOptions, type SecondFactor, type SignInObserver } from './ports.js';
export { type PasswordResets } from './ports.js';
export { NewDeviceNotices, NOT_ME_TTL_MS, signinNoticeStore, type NewDeviceNoticeDeps } from './new-device.js';
export { NotMeService, NOT_ME_PER_SOURCE, type NotMeDeps, type ReportedSignIn } from './not-me.js';
