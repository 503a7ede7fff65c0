/**
 * What the page asks the console's own server (`crates/console`): what the SDK and the CLI
 * already know how to do, so that the console says it in the same words.
 */

/** The header `/api` requires: only the console's own page sends it. */
const API_HEADER = { 'x-wetee-console': '1' };

/** A problem of a manifest field, in the CLI's words. */
export interface Problem {
  field: string;
  problem: string;
}

/** A `wetee.toml` as the chain takes it. */
export type Parsed =
  | { kind: 'app'; spec: Record<string, unknown> }
  | { kind: 'task'; spec: Record<string, unknown> };

/** The console's server refused, with its status and words. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function failure(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  return new ApiError(response.status, text || `the console's server answered ${response.status}`);
}

/** Reads a `wetee.toml` as `wetee deploy` does: the spec, or every problem by field. */
export async function parseManifest(text: string): Promise<Parsed | { problems: Problem[] }> {
  const response = await fetch('/api/manifest', { method: 'POST', headers: API_HEADER, body: text });
  if (response.ok) {
    return response.json();
  }
  throw await failure(response);
}

/** `wetee_client::app_overview::AppOverview`. */
export interface AppOverview {
  app_id: number;
  name: string;
  owner: string;
  version: number;
  status: { state: 'pending' | 'running' | 'awaiting_secrets' | 'stopped'; reason?: string };
  /** The state in words, as `wetee app status` prints it. */
  state: string;
  worker: number | null;
  url: string | null;
  deposit: string;
  price_per_epoch: string | null;
  runway_epochs: number | null;
  grace_until: number | null;
  pending_reason: string | null;
  failure: { worker: number; version: number; reason: string; at: number } | null;
}

async function get<T>(path: string): Promise<T> {
  const response = await fetch(path, { headers: API_HEADER });
  if (!response.ok) {
    throw await failure(response);
  }
  return response.json();
}

/** Every app of `owner`, newest first. */
export function appsOf(owner: string): Promise<AppOverview[]> {
  return get(`/api/apps?owner=${encodeURIComponent(owner)}`);
}

/** One app; rejects with "there is no app N" if there is none. */
export function app(id: number): Promise<AppOverview> {
  return get(`/api/apps/${id}`);
}


/** `wetee_client::worker_trust::WorkerTrust`: a worker's attestation proven and judged by the console's server. */
export interface WorkerTrust {
  worker: number;
  height: number;
  block_time_ms: number;
  tee: string;
  simulated: boolean;
  valid: boolean;
  reason: string | null;
  verdict: {
    tcb_status: string | null;
    advisory_ids: string[];
    debug: boolean | null;
    measurements: Record<string, Record<string, unknown>> | null;
  };
  evidence_height: number;
  fresh_at_ms: number;
  expires_at_ms: number;
  identity: string;
  sealing_key: string;
  endpoint: string;
  owner_api_host: string | null;
  policy: { allowed_tcb_statuses: string[]; allow_simulated_tee: boolean; max_evidence_age_ms: number };
}

/** Worker `id`'s attestation, proven through the light client and judged as the chain judges it. */
export function workerTrust(id: number): Promise<WorkerTrust> {
  return get(`/api/workers/${id}/trust`);
}

/** `wetee_client::secrets::SealTarget`: where an app's secrets are sealed, after judging its worker. */
export interface SealTarget {
  app: number;
  owner: string;
  worker: number;
  sealing_key: string;
  revision: number;
  declared: string[];
  stored: SecretsRecord | null;
  moved: boolean;
  allowed_images: string[];
}

/** Where `owner`'s app `id` seals its secrets; rejects with the chain's reason when it cannot. */
export function sealTarget(id: number, owner: string, allowSimulated: boolean): Promise<SealTarget> {
  return get(
    `/api/apps/${id}/seal-target?owner=${encodeURIComponent(owner)}&allow_simulated=${allowSimulated}`,
  );
}

/** The sealing key (hex) `account` has published, proven by the console's server; `null`: none. */
export function publishedSealingKey(account: string): Promise<string | null> {
  return get(`/api/accounts/${encodeURIComponent(account)}/sealing-key`);
}

/** An app's secrets record (`wetee_types::records::AppSecrets`) as the node shows it. */
export interface SecretsRecord {
  worker: number;
  sealing_key: string;
  revision: number;
  secrets: import('./sealing').SealedSecretJson[];
  allowed_images: string[];
}

/**
 * The secrets record an update of app `id` to the image `digest` (hex) has its owner sign, so
 * that the new image receives the app's secrets; `null` when no consent is needed.
 */
export function secretsGrant(id: number, digest: string): Promise<SecretsRecord | null> {
  return get(`/api/apps/${id}/secrets-grant?image=${encodeURIComponent(digest)}`);
}
