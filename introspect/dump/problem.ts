import { UnsupportedError } from '../../common/errors.js';

/** How a problem reads: "TASK OBJECT: DETAIL", or as one sentence "TASK OBJECT DETAIL". */
export interface ProblemForm {
  /** The object of the task it is about (an fd, a mapping), named after the task. */
  object?: string;
  /** The detail continues the subject as a sentence ("pid 5 (sh) runs under seccomp") rather than after a colon. */
  sentence?: boolean;
}

/**
 * Something the images cannot carry (criu refuses the same): the task it
 * belongs to, the kind of object (a row of a dumper table, or a part of a
 * task), and why. Problems are collected, not thrown, so that one refusal
 * lists them all.
 */
export class DumpProblem {
  constructor(readonly task: string, readonly kind: string, readonly detail: string, readonly form: ProblemForm = {}) {}

  get text(): string {
    const subject = this.form.object ? `${this.task} ${this.form.object}` : this.task;
    return this.form.sentence ? `${subject} ${this.detail}` : `${subject}: ${this.detail}`;
  }

  toString(): string {
    return this.text;
  }
}

/** A dump refused before any file is written: every problem, each naming its task. */
export class DumpRefusedError extends UnsupportedError {
  constructor(readonly root: number, readonly problems: readonly DumpProblem[]) {
    super(`cannot dump pid ${root}: ${problems.map((p) => p.text).join('; ')}`);
  }
}
