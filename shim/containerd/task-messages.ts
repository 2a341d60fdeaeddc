/**
 * The containerd.task.v2 messages this shim takes and gives
 * (proto/containerd/task/v2/shim.proto), and the task events it publishes
 * (proto/containerd/events/task.proto), with the .proto's own field names.
 * Requests are typed as decode gives them (common/proto.ts TO_OBJECT: every
 * scalar present, an absent message field null); responses and events as
 * encode takes them (absent fields are left out).
 */
import type { AnyMessage, Timestamp } from './api.js';

/** containerd.types.Mount. */
export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

/** containerd.v1.types.Status, as its numbers. */
export enum TaskStatus {
  UNKNOWN = 0,
  CREATED = 1,
  RUNNING = 2,
  STOPPED = 3,
  PAUSED = 4,
  PAUSING = 5,
}

/** The request of every method that names a task's process: exec_id "" is the container's init. */
export interface ProcessRequest {
  id: string;
  exec_id: string;
}

/** The request of every method that names the container only. */
export interface ContainerRequest {
  id: string;
}

export type Empty = Record<string, never>;

export interface CreateTaskRequest {
  id: string;
  bundle: string;
  rootfs: Mount[];
  terminal: boolean;
  stdin: string;
  stdout: string;
  stderr: string;
  checkpoint: string;
  parent_checkpoint: string;
  options: AnyMessage | null;
}

export interface CreateTaskResponse {
  pid: number;
}

export type StartRequest = ProcessRequest;

export interface StartResponse {
  pid: number;
}

export type DeleteRequest = ProcessRequest;

export interface DeleteResponse {
  pid: number;
  exit_status: number;
  exited_at?: Timestamp;
}

export interface ExecProcessRequest extends ProcessRequest {
  terminal: boolean;
  stdin: string;
  stdout: string;
  stderr: string;
  spec: AnyMessage | null;
}

export interface ResizePtyRequest extends ProcessRequest {
  width: number;
  height: number;
}

export type StateRequest = ProcessRequest;

export interface StateResponse {
  id: string;
  bundle: string;
  pid: number;
  status: TaskStatus;
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
  exit_status: number;
  exited_at?: Timestamp;
  exec_id: string;
}

export interface KillRequest extends ProcessRequest {
  signal: number;
  all: boolean;
}

export interface CloseIORequest extends ProcessRequest {
  stdin: boolean;
}

export type PidsRequest = ContainerRequest;

/** containerd.v1.types.ProcessInfo. */
export interface ProcessInfo {
  pid: number;
  info?: AnyMessage;
}

export interface PidsResponse {
  processes: ProcessInfo[];
}

export interface CheckpointTaskRequest extends ContainerRequest {
  path: string;
  options: AnyMessage | null;
}

export interface UpdateTaskRequest extends ContainerRequest {
  resources: AnyMessage | null;
  annotations: Record<string, string>;
}

export type WaitRequest = ProcessRequest;

export interface WaitResponse {
  exit_status: number;
  exited_at?: Timestamp;
}

export type StatsRequest = ContainerRequest;

export interface StatsResponse {
  stats?: AnyMessage;
}

export type ConnectRequest = ContainerRequest;

export interface ConnectResponse {
  shim_pid: number;
  task_pid: number;
  version: string;
}

export interface ShutdownRequest extends ContainerRequest {
  now: boolean;
}

export type PauseRequest = ContainerRequest;
export type ResumeRequest = ContainerRequest;

/** containerd.events.TaskIO. */
export interface TaskIO {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** The event message of each kind (api.ts TASK_TOPICS, TASK_EVENT_TYPE_URLS). */
export interface TaskEvents {
  create: { container_id: string; bundle: string; rootfs: Mount[]; io: TaskIO; checkpoint: string; pid: number };
  start: { container_id: string; pid: number };
  delete: { container_id: string; pid: number; exit_status: number; exited_at: Timestamp; id: string };
  exit: { container_id: string; id: string; pid: number; exit_status: number; exited_at: Timestamp };
  oom: { container_id: string };
  execAdded: { container_id: string; exec_id: string };
  execStarted: { container_id: string; exec_id: string; pid: number };
  paused: { container_id: string };
  resumed: { container_id: string };
  checkpointed: { container_id: string; checkpoint: string };
}
