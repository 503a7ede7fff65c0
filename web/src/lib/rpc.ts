/**
 * The node's JSON-RPC 2.0 over one WebSocket (docs/rpc.md): calls, and subscriptions that are
 * made again whenever the connection comes back. A node that is down or restarting is retried
 * with a growing pause, and whoever listens is told, so the page can say so.
 */

/** An error the node answered with (`code` as in docs/rpc.md), or a lost connection. */
export class RpcError extends Error {
  constructor(
    message: string,
    readonly code: number | null,
    readonly data: unknown = undefined,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/** Where the connection to the node is. */
export type Connection =
  | { kind: 'connecting' }
  | { kind: 'open' }
  | { kind: 'down'; reason: string; retryInMs: number };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface Subscription {
  method: string;
  params: unknown[];
  unsubscribeMethod: string;
  onItem: (item: unknown) => void;
  /** Told when the node refuses the subscription itself (then it is not made again). */
  onRefused?: (error: RpcError) => void;
  /**
   * For a subscription that must not be made twice (one that submits a transaction): told
   * when the connection is lost, and then dropped instead of made again.
   */
  onLost?: (reason: string) => void;
  /** The node's id for it on the current connection. */
  id: string | number | null;
}

const CALL_TIMEOUT_MS = 30_000;
const FIRST_RETRY_MS = 500;
/** The most entries a node answers in one page of a `state_*` list. */
const LARGEST_PAGE = 500;
/** The most entries the console gathers from one list. */
const MOST_LISTED = 100_000;
const LONGEST_RETRY_MS = 5_000;

export class Rpc {
  private socket: WebSocket | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private subscriptions = new Set<Subscription>();
  private retryMs = FIRST_RETRY_MS;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private listeners = new Set<(connection: Connection) => void>();
  private current: Connection = { kind: 'connecting' };

  constructor(private readonly url: string) {
    this.open();
  }

  /** Calls `listener` now and at each change of the connection; returns how to stop. */
  onConnection(listener: (connection: Connection) => void): () => void {
    this.listeners.add(listener);
    listener(this.current);
    return () => this.listeners.delete(listener);
  }

  /** Calls `method`; rejects with the node's error, or if the connection is lost first. */
  call<T>(method: string, params: unknown[] = []): Promise<T> {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RpcError(`not connected to the node at ${this.url}`, null));
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError(`the node did not answer ${method} within 30 s`, null));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  /**
   * Every entry of the paged list `method` answers (the `state_*` lists), page after page:
   * `params` come first, the page request last.
   */
  async every<T>(method: string, params: unknown[] = []): Promise<T[]> {
    const items: T[] = [];
    let after: unknown = null;
    for (;;) {
      const page: { items: T[]; next: unknown } = await this.call(method, [
        ...params,
        after === null ? { limit: LARGEST_PAGE } : { after, limit: LARGEST_PAGE },
      ]);
      items.push(...page.items);
      if (page.next === null || page.next === undefined) {
        return items;
      }
      // A node whose pages do not move on, or go on empty or for ever, would hold the console.
      if (page.items.length === 0 || JSON.stringify(page.next) === JSON.stringify(after)) {
        throw new RpcError(`${method}: the node's next page does not come after the last one`, null);
      }
      if (items.length > MOST_LISTED) {
        throw new RpcError(`${method}: the node lists more than ${MOST_LISTED} entries`, null);
      }
      after = page.next;
    }
  }

  /**
   * Subscribes with `method` and passes every notification's result to `onItem`, across
   * reconnections, until the returned function is called.
   */
  subscribe(
    method: string,
    params: unknown[],
    unsubscribeMethod: string,
    onItem: (item: unknown) => void,
    options: { onRefused?: (error: RpcError) => void; onLost?: (reason: string) => void } = {},
  ): () => void {
    const subscription: Subscription = {
      method,
      params,
      unsubscribeMethod,
      onItem,
      onRefused: options.onRefused,
      onLost: options.onLost,
      id: null,
    };
    this.subscriptions.add(subscription);
    if (this.current.kind === 'open') {
      void this.start(subscription);
    }
    return () => {
      this.subscriptions.delete(subscription);
      if (subscription.id !== null && this.current.kind === 'open') {
        this.call(unsubscribeMethod, [subscription.id]).catch(() => undefined);
      }
    };
  }

  /** Closes the connection for good. */
  close(): void {
    this.closed = true;
    if (this.retry !== null) {
      clearTimeout(this.retry);
    }
    this.socket?.close();
  }

  private set(connection: Connection): void {
    this.current = connection;
    for (const listener of this.listeners) {
      listener(connection);
    }
  }

  private open(): void {
    this.retry = null;
    if (this.closed) {
      return;
    }
    this.set({ kind: 'connecting' });
    let socket: WebSocket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.lost(`cannot connect to ${this.url}: ${String(error)}`);
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.retryMs = FIRST_RETRY_MS;
      this.set({ kind: 'open' });
      for (const subscription of this.subscriptions) {
        void this.start(subscription);
      }
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) {
        return;
      }
      this.socket = null;
      const reason = event.reason || `the connection to ${this.url} closed (code ${event.code})`;
      this.lost(reason);
    };
    // An error is followed by a close, which does the rest.
    socket.onerror = () => undefined;
  }

  private lost(reason: string): void {
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(new RpcError(`the connection to the node was lost: ${reason}`, null));
      this.pending.delete(id);
    }
    for (const subscription of this.subscriptions) {
      subscription.id = null;
      if (subscription.onLost) {
        this.subscriptions.delete(subscription);
        subscription.onLost(reason);
      }
    }
    if (this.closed) {
      return;
    }
    const retryInMs = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, LONGEST_RETRY_MS);
    this.set({ kind: 'down', reason, retryInMs });
    this.retry = setTimeout(() => this.open(), retryInMs);
  }

  private async start(subscription: Subscription): Promise<void> {
    try {
      const id = await this.call<string | number>(subscription.method, subscription.params);
      if (!this.subscriptions.has(subscription)) {
        this.call(subscription.unsubscribeMethod, [id]).catch(() => undefined);
        return;
      }
      subscription.id = id;
    } catch (error) {
      // The node refused it (an answer with a code): tell, and do not ask again. Otherwise
      // the connection went, and it is made again on reconnection.
      if (error instanceof RpcError && error.code !== null) {
        this.subscriptions.delete(subscription);
        subscription.onRefused?.(error);
      }
    }
  }

  private receive(data: unknown): void {
    if (typeof data !== 'string') {
      return;
    }
    let message: {
      id?: number;
      result?: unknown;
      error?: { code: number; message: string; data?: unknown };
      method?: string;
      params?: { subscription?: string | number; result?: unknown };
    };
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof message.id === 'number') {
      const pending = this.pending.get(message.id);
      if (!pending) {
        return;
      }
      this.pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.error) {
        pending.reject(new RpcError(message.error.message, message.error.code, message.error.data));
      } else {
        pending.resolve(message.result);
      }
      return;
    }
    const id = message.params?.subscription;
    if (message.method && id !== undefined) {
      for (const subscription of this.subscriptions) {
        if (subscription.id === id) {
          subscription.onItem(message.params?.result);
        }
      }
    }
  }
}
