/**
 * Accessible form pieces for the hosted pages: every input has a <label>, hints and errors are
 * tied to their field with aria-describedby (and aria-invalid on error), and the proof-of-work
 * widget is described in words. All markup goes through `html`, so every value is escaped.
 */
import { Type } from 'typebox';
import { html, type SafeHtml } from './layout.js';

export interface FieldSpec {
  id: string;
  name?: string;
  label: string;
  type: 'email' | 'password' | 'text' | 'hidden';
  value?: string;
  autocomplete?: string;
  inputmode?: 'email' | 'numeric' | 'text';
  required?: boolean;
  minlength?: number;
  maxlength?: number;
  hint?: string | SafeHtml;
  error?: string | null;
  autofocus?: boolean;
}

/** One labelled input with its hint and error, both announced with the field. */
export function field(f: FieldSpec): SafeHtml {
  const hintId = f.hint ? `${f.id}-hint` : null;
  const errId = f.error ? `${f.id}-error` : null;
  const describedBy = [hintId, errId].filter(Boolean).join(' ');
  return html`<div class="field${f.error ? ' has-error' : ''}">
<label for="${f.id}">${f.label}</label>
${f.hint ? html`<p id="${hintId}" class="hint">${f.hint}</p>` : ''}
${f.error ? html`<p id="${errId}" class="field-error">${f.error}</p>` : ''}
<input id="${f.id}" name="${f.name ?? f.id}" type="${f.type}"${f.value !== undefined && f.type !== 'password' ? html` value="${f.value}"` : ''}${f.autocomplete ? html` autocomplete="${f.autocomplete}"` : ''}${f.inputmode ? html` inputmode="${f.inputmode}"` : ''}${f.required === false ? '' : html` required`}${f.minlength ? html` minlength="${f.minlength}"` : ''} maxlength="${f.maxlength ?? 320}"${describedBy ? html` aria-describedby="${describedBy}"` : ''}${f.error ? html` aria-invalid="true"` : ''}${f.autofocus ? html` autofocus` : ''}>
</div>`;
}

/** Scripts and styles a page with the ALTCHA widget needs (all served from /assets/). */
export const ALTCHA_ASSETS = { scripts: ['/assets/altcha-init.js'], styles: ['/assets/altcha.css'] };

/**
 * The proof-of-work step, shown when the guard answered 428 with a challenge. The widget adds a
 * hidden field `altcha` (base64 of {challenge, solution}) to the form it sits in.
 */
export function challengeWidget(challenge: unknown): SafeHtml {
  return html`<div class="field challenge">
<p id="altcha-hint" class="hint">We are seeing unusual traffic. Tick the box below: your browser solves a small puzzle (a few seconds, no images, nothing about you is sent anywhere else). Then send the form again.</p>
<altcha-widget name="altcha" challenge="${JSON.stringify(challenge)}" configuration="${JSON.stringify({ hideFooter: true })}" aria-describedby="altcha-hint"></altcha-widget>
<noscript><p class="notice error">This step needs JavaScript. Turn it on for this site, or try again later.</p></noscript>
</div>`;
}

/** The `altcha` field of a form post. */
export const AltchaField = Type.Optional(Type.String({ maxLength: 8192 }));

/** A string form field with a length cap (forms arrive as text; no coercion anywhere). */
export const FormString = (maxLength: number) => Type.String({ maxLength });

/** `next` after sign-in: only a path on this site, never another origin (no open redirect). */
export function safeNext(next: string | undefined, fallback: string): string {
  if (typeof next !== 'string') return fallback;
  return /^\/(?![/\\])[A-Za-z0-9/_.-]{0,200}$/.test(next) && !next.includes('..') ? next : fallback;
}
