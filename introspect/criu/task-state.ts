/** core.tc.task_state: the states CRIU records for a task (compel/include/uapi/task-state.h). */
export const TASK_ALIVE = 1;
export const TASK_DEAD = 2;
export const TASK_STOPPED = 3;
