/**
 * Errors that reach a user carry what went wrong and what to do about it. They never carry a password or a row
 * value: callers pass redacted text only.
 */
export class KashoError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }

  /** The message and the hint, as printed to a user. */
  describe(): string {
    return this.hint ? `${this.message}\n  ${this.hint}` : this.message;
  }
}

/** A setting is missing or malformed: the program cannot start. */
export class ConfigError extends KashoError {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}
