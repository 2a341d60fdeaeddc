import fs from 'node:fs';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, errorMessage } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { TaskStatus } from '../containerd/task-messages.js';
import { tempName } from './checkpoint-archive.js';
import { ShimTask } from './shim-task.js';

/**
 * Where ovmigrate-cri notes each checkpoint it has underway: one 0600 file
 * per container, `<id>.json`. The guest's /run is a tmpfs, so a note never
 * outlives the boot, as a pause never does.
 */
export const CHECKPOINT_NOTES = '/run/ovmigrate/cri-checkpoints';

/** containerd's container ids (identifiers.Validate): safe as a file name. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,75}$/;

/**
 * One checkpoint underway, as its note says: enough for the next
 * ovmigrate-cri to undo it after a SIGKILL (shim/containerd/freezer.ts's
 * frozen marker does the same for the shim itself).
 */
export interface CheckpointNote {
  id: string;
  /** The task's bundle: its shim's address. */
  bundle: string;
  /** The archive's path; a partial archive beside it (writeExclusive's temporary name) is the dead run's. */
  location: string;
  /** The staging directory beside `location`. */
  stage: string;
  /** True from just before our Pause until our Resume succeeded: a Resume is owed. */
  paused: boolean;
  /** The ovmigrate-cri that wrote it. */
  pid: number;
  at: string;
}

/** The archive's temporary names beside `location` (writeExclusive, tempName): `.<base>.ovmigrate-<hex>.<suffix>`. */
function leftoverPattern(location: string): RegExp {
  const base = path.basename(location).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\.${base}\\.ovmigrate-[0-9a-f]{12}\\.(partial|staging-.*)$`);
}

/** How the guard reaches a container's shim (tests give their own). */
export type ConnectShim = (id: string, bundle: string) => Promise<Pick<ShimTask, 'state' | 'pause' | 'resume' | 'close'>>;

/**
 * The pause around a CRI checkpoint, made durable. Before the Pause a note
 * names the container, its staging directory and the location; it goes once
 * the container is resumed and the staging removed. An ovmigrate-cri killed
 * in between leaves it, and the next one (recover(), before it serves)
 * resumes the container and removes the dead run's staging and partial
 * archive. Only what this paused is resumed: a container the user paused
 * (ctr task pause) is checkpointed as it is and stays paused.
 */
export class PauseGuard {
  /** Containers this process is checkpointing now. */
  private readonly inflight = new Set<string>();

  constructor(readonly dir = CHECKPOINT_NOTES, private readonly connect: ConnectShim = (id, bundle) => ShimTask.connect(id, bundle)) {}

  private file(id: string): string {
    if (!ID.test(id)) throw new InvalidArgumentError(`container id ${JSON.stringify(id)} is not valid`);
    return path.join(this.dir, `${id}.json`);
  }

  /**
   * Notes a checkpoint of `id` into `location` and names its staging
   * directory (not made yet: the caller makes it, after the note, so none is
   * ever left unnamed). One checkpoint of a container at a time; a note left
   * by an earlier one of this process (its Resume failed) is dealt with first,
   * as recover() would.
   */
  async begin(id: string, bundle: string, location: string): Promise<CheckpointNote> {
    const file = this.file(id);
    if (this.inflight.has(id)) throw new FailedPreconditionError(`a checkpoint of container ${id} is already underway`);
    this.inflight.add(id);
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      if (fs.existsSync(file) && !(await this.recoverNote(file, id, false))) {
        throw new FailedPreconditionError(`container ${id} is still paused by an earlier checkpoint that could not resume it`);
      }
      const note: CheckpointNote = {
        id, bundle, location, stage: tempName(path.dirname(location), path.basename(location), '.staging-d'), paused: false, pid: process.pid, at: new Date().toISOString(),
      };
      fs.writeFileSync(file, JSON.stringify(note), { mode: 0o600, flag: 'wx' });
      return note;
    } catch (err) {
      this.inflight.delete(id);
      throw err;
    }
  }

  /** Rewrites the note whole (temporary file, rename): a kill leaves the old one or the new one. */
  private save(note: CheckpointNote): void {
    const file = this.file(note.id);
    const temp = `${file}.${process.pid}.new`;
    fs.writeFileSync(temp, JSON.stringify(note), { mode: 0o600 });
    fs.renameSync(temp, file);
  }

  /**
   * Pauses the container through its shim unless it is paused already (the
   * user's pause, which stays). True when this paused it: the caller then
   * owes resume(). containerd's own client does the same (State, then Pause
   * if not paused).
   */
  async pause(note: CheckpointNote, task: Pick<ShimTask, 'state' | 'pause'>): Promise<boolean> {
    const status = (await task.state()).status;
    if (status === TaskStatus.PAUSED || status === TaskStatus.PAUSING) {
      log.info(`cri: container ${note.id} is paused already: checkpointed as it is, and left paused`);
      return false;
    }
    this.save({ ...note, paused: true });
    try {
      await task.pause();
    } catch (err) {
      // The shim's Pause failed (runc pause): nothing of ours to undo.
      this.save({ ...note, paused: false });
      throw err;
    }
    note.paused = true;
    return true;
  }

  /** Resumes what pause() paused; the note says so only once the Resume succeeded. */
  async resume(note: CheckpointNote, task: Pick<ShimTask, 'resume'>): Promise<void> {
    await task.resume();
    note.paused = false;
    this.save(note);
  }

  /** The checkpoint is over: its staging is gone (the caller removed it), so is the note. */
  end(note: CheckpointNote): void {
    this.inflight.delete(note.id);
    if (note.paused) return; // A Resume still owed: the note stays for recover().
    fs.rmSync(this.file(note.id), { force: true });
  }

  /**
   * What dead predecessors left: each noted container they paused is
   * resumed (if its shim still runs it, paused), their staging directories
   * and partial archives removed, the notes taken away. A note whose Resume
   * fails stays, for the next start. Run before serving.
   */
  async recover(): Promise<void> {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const file = path.join(this.dir, name);
      if (name.endsWith('.new')) fs.rmSync(file, { force: true });
      else if (name.endsWith('.json')) await this.recoverNote(file, name.slice(0, -'.json'.length), true);
    }
  }

  /**
   * One note of a checkpoint that did not end: resumed, its staging removed
   * (and, when its process is dead, partial archives at its location), the
   * note gone; false when the Resume failed (the note stays).
   */
  private async recoverNote(file: string, id: string, processDead: boolean): Promise<boolean> {
    let note: CheckpointNote;
    try {
      note = JSON.parse(fs.readFileSync(file, 'utf8')) as CheckpointNote;
      if (note.id !== id || !ID.test(note.id)) throw new Error(`it names container ${JSON.stringify(note.id)}`);
    } catch (err) {
      log.warn(`cri: ${file} is not a checkpoint note (${errorMessage(err)}): removed`);
      fs.rmSync(file, { force: true });
      return true;
    }
    try {
      if (note.paused) await this.resumeLeftover(note);
    } catch (err) {
      log.error(`cri: container ${note.id}, paused by a checkpoint that did not end (ovmigrate-cri pid ${note.pid}), could not be resumed: ${errorMessage(err)}`);
      return false;
    }
    await removeLeftovers(note, processDead);
    fs.rmSync(file, { force: true });
    return true;
  }

  private async resumeLeftover(note: CheckpointNote): Promise<void> {
    let task: Awaited<ReturnType<ConnectShim>>;
    try {
      task = await this.connect(note.id, note.bundle);
    } catch (err) {
      // No shim (the container was deleted meanwhile): nothing is paused any more.
      log.warn(`cri: container ${note.id} was paused by a checkpoint of an ovmigrate-cri that died; its shim is gone: ${errorMessage(err)}`);
      return;
    }
    try {
      // The shim takes Resume after a checkpoint still running there (its freezer's turn-taking).
      const status = (await task.state()).status;
      if (status !== TaskStatus.PAUSED && status !== TaskStatus.PAUSING) {
        log.warn(`cri: container ${note.id}, paused by a checkpoint of an ovmigrate-cri that died, is ${TaskStatus[status] ?? status} now: left so`);
        return;
      }
      await task.resume();
      log.warn(`cri: container ${note.id}, paused by a checkpoint of an ovmigrate-cri that died (pid ${note.pid}), resumed`);
    } finally {
      task.close();
    }
  }
}

/**
 * The note's staging directory, and with `partials` every temporary file of
 * an archive for its location (a live process removes its own: only a dead
 * one's can be there, as nothing serves yet); nothing else.
 */
async function removeLeftovers(note: CheckpointNote, partials: boolean): Promise<void> {
  const dir = path.dirname(note.location);
  const pattern = partials ? leftoverPattern(note.location) : undefined;
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name !== path.basename(note.stage) && !pattern?.test(name)) continue;
    await fs.promises.rm(path.join(dir, name), { recursive: true, force: true })
      .then(() => log.info(`cri: removed ${logSafe(path.join(dir, name))}, left by a checkpoint that did not end`))
      .catch((err: unknown) => log.warn(`cri: removing ${logSafe(path.join(dir, name))}: ${errorMessage(err)}`));
  }
}
