export { SessionsService, type SessionsDeps, type SessionView, type ActiveSession } from './service.js';
export { describeDevice } from './device.js';
export { SignInFlow, type SignInDeps, type SignInResult } from './sign-in.js';
export { noThrottle, noSecondFactor, type SignInThrottle, type SecondFactor, type SignInObserver } from './ports.js';
