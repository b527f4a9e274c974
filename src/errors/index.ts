/**
 * The base of every error kimg throws. `code` is stable and machine-readable (branch on it);
 * `message` is for humans and names what was wrong. Subclasses add the facts a caller needs
 * (the input, the image, the offset) as properties, never only inside the message.
 */
export class KimgError<Code extends string = string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** True when `err` is a KimgError, optionally with the given code. */
export function isKimgError(err: unknown, code?: string): err is KimgError {
  return err instanceof KimgError && (code === undefined || err.code === code);
}
