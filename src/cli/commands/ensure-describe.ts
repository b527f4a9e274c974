/**
 * `kimg ensure` output: a pod's containers and events as `kubectl describe pod` shows them
 * (events aggregated `(xN over M)`, kubectl ages), the watch lines, and the preflight report.
 */
import {
  formatGoDuration,
  humanDuration,
  podStatusText,
  type ContainerImageState,
  type KubeletEvent,
  type PreflightContainer,
  type PreflightReport,
} from '../../kubelet/index.ts';

export interface AggregatedEvent {
  readonly type: string;
  readonly reason: string;
  readonly message: string;
  readonly fieldPath: string | undefined;
  readonly count: number;
  readonly firstTimestamp: number;
  readonly lastTimestamp: number;
}

/** The kubelet's event aggregation: the same type, reason, message and object count up. */
export function aggregateEvents(events: readonly KubeletEvent[]): AggregatedEvent[] {
  const byKey = new Map<string, AggregatedEvent>();
  for (const event of events) {
    const key = JSON.stringify([event.type, event.reason, event.message, event.object?.fieldPath ?? '']);
    const seen = byKey.get(key);
    byKey.set(
      key,
      seen === undefined
        ? {
            type: event.type,
            reason: event.reason,
            message: event.message,
            fieldPath: event.object?.fieldPath,
            count: 1,
            firstTimestamp: event.timestamp,
            lastTimestamp: event.timestamp,
          }
        : { ...seen, count: seen.count + 1, lastTimestamp: event.timestamp },
    );
  }
  // kubectl sorts by last timestamp; the sort is stable, so ties keep the order they happened in.
  return [...byKey.values()].sort((a, b) => a.lastTimestamp - b.lastTimestamp);
}

/** Left-aligned columns, each as wide as its widest cell plus two (kubectl's tabwriter). */
export function columns(rows: readonly (readonly string[])[], indent = ''): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map(
    (row) =>
      indent +
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 2)))
        .join('')
        .trimEnd(),
  );
}

export function eventAge(event: AggregatedEvent, now: number): string {
  const last = humanDuration(now - event.lastTimestamp);
  return event.count > 1 ? `${last} (x${event.count} over ${humanDuration(now - event.firstTimestamp)})` : last;
}

export function formatEvents(events: readonly KubeletEvent[], now: number): string[] {
  const aggregated = aggregateEvents(events);
  if (aggregated.length === 0) return ['Events:  <none>'];
  const rows = [
    ['Type', 'Reason', 'Age', 'From', 'Message'],
    ['----', '------', '----', '----', '-------'],
    ...aggregated.map((e) => [e.type, e.reason, eventAge(e, now), 'kubelet', e.message]),
  ];
  return ['Events:', ...columns(rows, '  ')];
}

function field(indent: number, label: string, value: string, width: number): string {
  return `${' '.repeat(indent)}${`${label}:`.padEnd(width)}${value}`.trimEnd();
}

function describeContainer(state: ContainerImageState): string[] {
  const lines = [`  ${state.name}:`, field(4, 'Image', state.image, 20)];
  if (state.imageRef !== '') lines.push(field(4, 'Image ID', state.imageRef, 20));
  lines.push(field(4, 'Image Pull Policy', state.pullPolicy, 20));
  // A ready image means the kubelet would now create the container.
  lines.push(field(4, 'State', 'Waiting', 20), field(6, 'Reason', state.waiting?.reason ?? 'ContainerCreating', 18));
  if (state.waiting !== undefined && state.waiting.message !== '')
    lines.push(field(6, 'Message', state.waiting.message, 18));
  lines.push(field(4, 'Image Ready', state.ready ? 'True' : 'False', 20));
  return lines;
}

export interface PodDescription {
  readonly name: string;
  readonly namespace: string;
  readonly source: string;
  readonly containers: readonly ContainerImageState[];
  readonly events: readonly KubeletEvent[];
}

/** `kubectl describe pod`, the image parts. */
export function describePod(pod: PodDescription, now: number): string {
  const inits = pod.containers.filter((c) => c.init);
  const apps = pod.containers.filter((c) => !c.init);
  const ready = pod.containers.filter((c) => c.ready).length;
  const lines = [
    field(0, 'Name', pod.name, 18),
    field(0, 'Namespace', pod.namespace, 18),
    field(0, 'Source', pod.source, 18),
    field(
      0,
      'Status',
      ready === pod.containers.length ? 'Pending (images ready)' : `Pending (${podStatusText(pod.containers)})`,
      18,
    ),
  ];
  if (inits.length > 0) lines.push('Init Containers:', ...inits.flatMap(describeContainer));
  lines.push('Containers:', ...apps.flatMap(describeContainer));
  lines.push(...formatEvents(pod.events, now));
  return lines.join('\n');
}

/** One line per event as it happens, for `--watch`. */
export function watchEventLine(event: KubeletEvent): string {
  const time = new Date(event.timestamp).toISOString().slice(11, 19);
  const object = event.object?.fieldPath ?? `${event.object?.kind ?? ''}`;
  return `${time}  ${event.type.padEnd(7)}  ${event.reason.padEnd(16)}  ${object}  ${event.message}`;
}

export function clockTime(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

export function formatWait(ms: number): string {
  return formatGoDuration(Math.round(ms / 100) * 100);
}

function preflightVerdict(c: PreflightContainer): string {
  switch (c.action) {
    case 'use-local':
      return `would use the stored image ${c.imageRef ?? ''}`.trimEnd();
    case 'pull':
      return `would pull ${c.resolved?.platformDigest ?? c.resolved?.digest ?? ''} (${c.resolved?.credential ?? 'anonymous'})`;
    case 'fail':
      return `would FAIL: ${c.reason}`;
  }
}

/** The preflight report of one pod, as text. */
export function describePreflight(report: PreflightReport, source: string): string {
  const lines = [
    `${source}: ${report.ok ? 'every image would be ready' : `${report.containers.filter((c) => c.action === 'fail').length} of ${report.containers.length} containers would fail`}`,
  ];
  if (report.missingSecrets.length > 0) {
    lines.push(
      `  Warning  FailedToRetrieveImagePullSecret  Unable to retrieve some image pull secrets (${report.missingSecrets.join(', ')}); attempting to pull the image may not succeed.`,
    );
  }
  for (const c of report.containers) {
    lines.push(
      `  ${c.init ? 'init container' : 'container'} ${c.name}: ${c.image} (${c.pullPolicy}) ${preflightVerdict(c)}`,
    );
    if (c.action === 'fail') {
      lines.push(`      message: ${c.message}`);
      if (c.problem !== undefined) lines.push(`      problem: ${c.problem}`);
    }
    for (const attempt of c.attempts)
      lines.push(`      tried:   ${attempt.credential} → ${attempt.ok ? 'ok' : (attempt.code ?? 'failed')}`);
    if (c.resolved !== undefined && c.resolved.platforms.length > 0)
      lines.push(`      platforms: ${c.resolved.platforms.join(', ')}`);
    for (const note of c.notes) lines.push(`      note:    ${note}`);
    if (c.fix !== undefined) lines.push(`      fix:     ${c.fix}`);
  }
  return lines.join('\n');
}
