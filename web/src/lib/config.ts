/** What the console's server tells the page: where the node is, and what kind of chain. */
export interface ConsoleConfig {
  /** The node's JSON-RPC over WebSocket, `ws://…` or `wss://…`. */
  rpc: string;
  /** Whether the chain is a development chain (dev keys such as `//Alice` may be offered). */
  dev: boolean;
  /**
   * The genesis hash (hex) of the chain the console's server trusts and proves against: a node
   * that serves another chain is refused. `null`: the server was told of none.
   */
  genesis: string | null;
}

/** Reads `/config.json` from the console's server. */
export async function loadConfig(): Promise<ConsoleConfig> {
  const response = await fetch('/config.json', { cache: 'no-store' });
  if (!response.ok) {
    throw new Error(`the console's server answered ${response.status} for /config.json`);
  }
  const config = (await response.json()) as Partial<ConsoleConfig>;
  if (typeof config.rpc !== 'string' || !/^wss?:\/\//.test(config.rpc)) {
    throw new Error('/config.json names no WebSocket RPC URL');
  }
  const genesis = typeof config.genesis === 'string' && /^[0-9a-f]{64}$/.test(config.genesis) ? config.genesis : null;
  return { rpc: config.rpc, dev: config.dev === true, genesis };
}
