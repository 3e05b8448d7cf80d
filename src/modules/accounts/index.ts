export { AccountsService, VERIFICATION_TTL_MS, type AccountsDeps, type ImportReport, type NewUserInput, type MailboxProvenHook, type PasswordChangedHook } from './service.js';
export { PasswordHasher, DEFAULT_ARGON2, MAX_PASSWORD_BYTES, hashKind, isSupportedHash } from './password-hasher.js';
export { checkPassword, noBreachedList, PASSWORD_PROBLEM_TEXT, MIN_PASSWORD_LENGTH, type BreachedPasswords, type PasswordProblem } from './password-policy.js';
export type { UserRow } from './store.js';
