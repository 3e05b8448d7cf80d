/** Shared JSON schemas (TypeBox) for route definitions and the OpenAPI document. */
import { Type } from 'typebox';

export const Email = Type.String({ minLength: 3, maxLength: 320, description: 'Email address (normalised: trimmed, NFC, lower case)' });
export const Password = Type.String({ minLength: 1, maxLength: 1024, description: 'At least 8 characters, at most 1024 bytes; checked against known-breached passwords' });
export const Token = Type.String({ minLength: 1, maxLength: 200, description: 'Token from the link' });

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable error code; see docs/errors.md' }),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    requestId: Type.Optional(Type.String()),
  },
  { additionalProperties: true, description: 'application/problem+json (RFC 9457)' },
);

/** Standard error responses to list in a route schema. */
export function problems(...statuses: number[]): Record<number, typeof ProblemSchema> {
  return Object.fromEntries(statuses.map((s) => [s, ProblemSchema]));
}

export const Accepted = Type.Object({ status: Type.Literal('accepted') }, { additionalProperties: false });

/** What the ALTCHA widget submits (base64 of {challenge, solution}) or that object itself. */
export const Altcha = Type.Union([Type.String({ minLength: 1, maxLength: 8192 }), Type.Object({}, { additionalProperties: true })], { description: 'A solved proof-of-work challenge (after a 428)' });
