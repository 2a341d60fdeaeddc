import { errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { TtrpcClient } from '../../common/ttrpc/index.js';
import { EVENTS_SERVICE, TASK_EVENT_TYPE_URLS, TASK_TOPICS, TaskEventKind, encode, packMessage, toTimestamp } from './api.js';
import type { TaskEvents } from './task-messages.js';

const ATTEMPTS = 5;

/**
 * Publishes task events to containerd's ttrpc events service
 * (Events.Forward), one at a time and in the order they were made: containerd
 * relies on TaskCreate before TaskStart before TaskExit before TaskDelete.
 */
export class EventPublisher {
  private client?: TtrpcClient;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly ttrpcAddress: string, private readonly namespace: string) {}

  publish<K extends TaskEventKind>(kind: K, event: TaskEvents[K]): void {
    const envelope = {
      timestamp: toTimestamp(new Date()),
      namespace: this.namespace,
      topic: TASK_TOPICS[kind],
      event: packMessage(TASK_EVENT_TYPE_URLS[kind], event),
    };
    const payload = encode('containerd.services.events.ttrpc.v1.ForwardRequest', { envelope });
    this.queue = this.queue.then(() => this.forward(kind, payload));
  }

  /** Resolves once everything published so far has been sent (or given up). */
  flush(): Promise<void> {
    return this.queue;
  }

  private async forward(kind: TaskEventKind, payload: Buffer): Promise<void> {
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        if (!this.client || this.client.closed) this.client = await TtrpcClient.connect(this.ttrpcAddress.replace(/^unix:\/\//, ''));
        await this.client.call(EVENTS_SERVICE, 'Forward', payload, {
          timeoutMs: 5000, metadata: { 'containerd-namespace-ttrpc': this.namespace },
        });
        return;
      } catch (err) {
        log.warn(`publishing ${TASK_TOPICS[kind]} (attempt ${attempt}): ${errorMessage(err)}`);
        this.client?.close();
        this.client = undefined;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
    log.error(`gave up publishing ${TASK_TOPICS[kind]}`);
  }

  close(): void {
    this.client?.close();
  }
}
