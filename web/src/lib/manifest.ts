/**
 * The deploy form as a `wetee.toml`: the console's server reads it exactly as `wetee deploy`
 * does, so the form gets the CLI's messages, each next to the field it names.
 */

import type { Problem } from './api';

/** What the deploy form holds, as typed. */
export interface DeployForm {
  name: string;
  image: string;
  /** The container port, or empty. */
  port: string;
  /** `NAME=value`, one per line. */
  env: string;
  /** Secret names, separated by commas or spaces. */
  secrets: string;
  replicas: string;
  cpuMillicores: string;
  memoryMib: string;
  tee: string;
  region: string;
  maxPricePerEpoch: string;
  /** The HTTP path probed for health, or empty for none. */
  healthPath: string;
}

export const EMPTY_FORM: DeployForm = {
  name: '',
  image: '',
  port: '8080',
  env: '',
  secrets: '',
  replicas: '1',
  cpuMillicores: '100',
  memoryMib: '64',
  tee: 'simulated',
  region: '',
  maxPricePerEpoch: '1',
  healthPath: '/',
};

/** A TOML string: JSON's escapes are TOML's. */
function quoted(text: string): string {
  return JSON.stringify(text);
}

/** A whole number as written, or the text quoted so that the reader names the field. */
function number(text: string): string {
  const trimmed = text.trim();
  return /^-?[0-9]+$/.test(trimmed) ? trimmed : quoted(trimmed);
}

/** Problems of the form itself, before the manifest is read: lines that are not `NAME=value`. */
export function formProblems(form: DeployForm): Problem[] {
  const problems: Problem[] = [];
  form.env.split('\n').forEach((line, index) => {
    if (line.trim() && !line.includes('=')) {
      problems.push({ field: 'env', problem: `line ${index + 1}: expected NAME=value` });
    }
  });
  return problems;
}

/** The form as a `wetee.toml`. */
export function formToToml(form: DeployForm): string {
  const lines = ['kind = "app"', `name = ${quoted(form.name.trim())}`, `image = ${quoted(form.image.trim())}`];
  const env = form.env
    .split('\n')
    .filter((line) => line.includes('='))
    .map((line) => {
      const at = line.indexOf('=');
      return `${quoted(line.slice(0, at).trim())} = ${quoted(line.slice(at + 1))}`;
    });
  if (env.length > 0) {
    lines.push(`env = { ${env.join(', ')} }`);
  }
  const secrets = form.secrets.split(/[\s,]+/).filter(Boolean);
  if (secrets.length > 0) {
    lines.push(`secrets = [${secrets.map(quoted).join(', ')}]`);
  }
  if (form.port.trim()) {
    lines.push(`ports = [{ container = ${number(form.port)} }]`);
  }
  lines.push(`replicas = ${number(form.replicas)}`);
  lines.push(
    `resources = { cpu_millicores = ${number(form.cpuMillicores)}, memory_mib = ${number(form.memoryMib)} }`,
  );
  const placement = [`tee = ${quoted(form.tee)}`];
  if (form.region.trim()) {
    placement.push(`region = ${quoted(form.region.trim())}`);
  }
  placement.push(`max_price_per_epoch = ${quoted(form.maxPricePerEpoch.trim())}`);
  lines.push(`placement = { ${placement.join(', ')} }`);
  if (form.healthPath.trim() && form.port.trim()) {
    lines.push(
      `health = { http_path = ${quoted(form.healthPath.trim())}, port = ${number(form.port)}, interval_secs = 5 }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Whether `field` is `parent` or a part of it: `ports[0].container` is part of `ports`. */
export function isWithin(field: string, parent: string): boolean {
  if (!field.startsWith(parent)) {
    return false;
  }
  const rest = field.slice(parent.length);
  return rest === '' || rest.startsWith('.') || rest.startsWith('[');
}
