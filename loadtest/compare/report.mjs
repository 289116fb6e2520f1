// Turns one comparison run (runs.jsonl and conditions.json, written by run.sh) into
// results.json, summary.md (medians, spread, ratios, the issue's targets) and latency.png
// (drawn by gnuplot when it is installed).
//
// Usage: node report.mjs artifacts/loadtest/<timestamp>

import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node report.mjs <run folder>');
  process.exit(2);
}
const conditions = JSON.parse(readFileSync(join(dir, 'conditions.json'), 'utf8'));
const runs = readFileSync(join(dir, 'runs.jsonl'), 'utf8')
  .split('\n')
  .filter((line) => line.trim())
  .map((line) => JSON.parse(line));

/** What run.sh measured around each run, aggregated like the scenario's own figures. */
const RUN_FIGURES = [
  'loadavg_1m',
  'steal_pct',
  'load_cpu_busy_pct',
  'server_cpu_busy_pct',
  'server_cpu_pct',
  'services_cpu_pct',
  'client_cpu_pct',
];

/** Our server; every ratio is ours over a peer's. */
const OURS = 'paranimo';

/** Our server on two nodes: not a peer, so set beside one node rather than in the ratios. */
const OURS_2 = 'paranimo-2';

/** The websocket servers, in the order the tables show them. */
const WS_SERVERS = [
  'paranimo',
  'paranimo-2',
  'tokio-minimal',
  'bun',
  'node-ws',
  'socketio',
  'socketio-2',
];

/**
 * The figures each scenario is judged by: JSON key, label, and which way is better.
 * Every other numeric key is still aggregated into results.json.
 */
const HEADLINES = {
  idle: [
    ['server_kib_per_connection', 'server KiB per connection', 'lower'],
    ['connects_per_second', 'connects/s', 'higher'],
    ['handshake_p99_ms', 'handshake p99 ms', 'lower'],
  ],
  fanout: [
    ['latency_p50_ms', 'delivery p50 ms', 'lower'],
    ['latency_p99_ms', 'delivery p99 ms', 'lower'],
    ['deliveries_per_second', 'deliveries/s', 'higher'],
    ['missed', 'missed', 'lower'],
  ],
  'fanout-burst': [
    ['deliveries_per_second', 'deliveries/s', 'higher'],
    ['latency_p50_ms', 'delivery p50 ms', 'lower'],
    ['latency_p99_ms', 'delivery p99 ms', 'lower'],
    ['publish_p50_ms', 'publish answer p50 ms', 'lower'],
    ['missed', 'missed', 'lower'],
  ],
  chat: [
    ['delivered_per_second', 'delivered/s', 'higher'],
    ['latency_p50_ms', 'delivery p50 ms', 'lower'],
    ['latency_p99_ms', 'delivery p99 ms', 'lower'],
    ['missing', 'missing', 'lower'],
  ],
  relay: [
    ['round_trip_p50_ms', 'round trip p50 ms', 'lower'],
    ['round_trip_p99_ms', 'round trip p99 ms', 'lower'],
    ['missing', 'missing', 'lower'],
  ],
  booking: [
    ['bookings_per_second', 'confirmed bookings/s', 'higher'],
    ['requests_per_second', 'requests/s', 'higher'],
    ['latency_p99_ms', 'request p99 ms', 'lower'],
    ['db_therapist_overlaps', 'therapist overlaps', 'lower'],
    ['refusals_limit_422', 'refused at the client limit (422)', 'lower'],
    ['errors_surfaced', 'errors surfaced to clients', 'lower'],
  ],
  'booking-spread': [
    ['confirmed_per_second', 'confirmed bookings/s', 'higher'],
    ['latency_p99_ms', 'transaction p99 ms', 'lower'],
  ],
  'booking-contended': [
    ['confirmed_per_second', 'confirmed bookings/s', 'higher'],
    ['tps', 'attempts/s', 'higher'],
    ['latency_p99_ms', 'transaction p99 ms', 'lower'],
  ],
  'publish-p1': [
    ['publish_per_second', 'PUBLISH/s', 'higher'],
    ['latency_p99_ms', 'p99 ms', 'lower'],
  ],
  'publish-p16': [
    ['publish_per_second', 'PUBLISH/s (pipeline 16)', 'higher'],
    ['latency_p99_ms', 'p99 ms', 'lower'],
  ],
};

// --- aggregation ------------------------------------------------------------------------

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** server → scenario → key → { median, min, max, n } over the rounds that completed. */
const aggregates = {};
for (const run of runs) {
  if (run.skipped || !run.summary) continue;
  const scenario = (aggregates[run.server] ??= {})[run.scenario] ??= { values: {} };
  // The run's conditions go beside the scenario's own figures (their names do not clash).
  const sample = { ...run.summary };
  for (const key of RUN_FIGURES) sample[key] = run[key];
  for (const [key, value] of Object.entries(sample)) {
    if (typeof value === 'number' && Number.isFinite(value)) (scenario.values[key] ??= []).push(value);
  }
}
for (const scenarios of Object.values(aggregates)) {
  for (const [name, { values }] of Object.entries(scenarios)) {
    scenarios[name] = Object.fromEntries(
      Object.entries(values).map(([key, list]) => [
        key,
        { median: median(list), min: Math.min(...list), max: Math.max(...list), n: list.length },
      ]),
    );
  }
}
const figure = (server, scenario, key) => aggregates[server]?.[scenario]?.[key];

// --- formatting -------------------------------------------------------------------------

function num(x) {
  if (x === undefined || x === null || Number.isNaN(x)) return '–';
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString('en-GB');
  if (abs >= 100) return x.toFixed(0);
  if (abs >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** "median (min–max)" or just the median when the rounds agree or there was one. */
function cell(f) {
  if (!f) return '–';
  if (f.n === 1 || f.min === f.max) return num(f.median);
  return `${num(f.median)} (${num(f.min)}–${num(f.max)})`;
}

function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

// --- summary.md ---------------------------------------------------------------------------

const md = [];
const c = conditions;
md.push(`# Load comparison ${c.started}`);
md.push('');
md.push(
  `Commit ${c.commit}${c.dirty ? ' (with uncommitted changes)' : ''}; ${c.rounds} round(s), ` +
    `measured in ${Math.floor(c.measured_seconds / 60)} min ${c.measured_seconds % 60} s. ` +
    `${c.cores} cores (${c.cpu_model}), ${Math.round(c.memory_kib / 1048576)} GiB; load ` +
    `generator on CPU ${c.load_cpus}, server on CPU ${c.server_cpus}; PostgreSQL ` +
    `${c.postgres.server_version} (fsync ${c.postgres.fsync}, synchronous_commit ` +
    `${c.postgres.synchronous_commit}) and Redis ${c.redis} unpinned; Node ${c.node}, Bun ${c.bun}.`,
);
md.push('');
md.push(
  'Each cell is the median over the rounds, with the spread (min–max) in brackets. ' +
    'CPU % is the share of one core a process used over the run: the server process, the ' +
    'machine\'s PostgreSQL and Redis (which only Paranimo and Socket.IO on two nodes use; ' +
    'unpinned, so they may run on either core), and the load client. A ratio is ours ÷ the peer\'s medians: above 1 is better for "higher" figures, below 1 ' +
    'for "lower" ones. Sizes: ' +
    Object.entries(c.sizes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') +
    '.',
);

/** Counts that should be zero: shown, but a ratio of them means nothing. */
const COUNTS = new Set([
  'missed',
  'missing',
  'db_therapist_overlaps',
  'refusals_limit_422',
  'errors_surfaced',
]);

const INTRO = {
  idle: 'Connections held open with heartbeats; memory is the server\'s resident set after ' +
    'they opened, less before, per connection.',
  fanout: 'Events published at a fixed pace (one every FANOUT_INTERVAL_MS) to every ' +
    'subscriber of one topic: delivery latency at that offered load.',
  'fanout-burst': 'The same events published back to back (each after the previous was ' +
    'answered): deliveries per second at saturation.',
  chat: 'Pairs sending at a steady rate on their own topic (Paranimo: a booking\'s ' +
    'conversation, stored in PostgreSQL): delivery latency at that load.',
  relay: 'Pairs pinging each other at a steady rate, each ping echoed by the other side at ' +
    'once: the round trip through the server\'s relay, twice one way (Paranimo: `room.signal` ' +
    'in a booked room, as WebRTC signalling travels; the peers: `message.send` on a topic).',
};

for (const scenario of ['idle', 'fanout', 'fanout-burst', 'chat', 'relay']) {
  const servers = WS_SERVERS.filter((s) => aggregates[s]?.[scenario]);
  md.push('', `## ${scenario}`, '', INTRO[scenario], '');
  if (servers.length === 0) {
    md.push('Not measured in this run (see "Skipped and failed runs").');
    continue;
  }
  const heads = HEADLINES[scenario];
  md.push(
    table(
      [
        'server',
        ...heads.map(([, label, better]) => `${label} (${better})`),
        'server CPU %',
        'PostgreSQL + Redis CPU %',
        'client CPU %',
      ],
      servers.map((s) => [
        s === OURS ? `**${s}**` : s,
        ...heads.map(([key]) => cell(figure(s, scenario, key))),
        cell(figure(s, scenario, 'server_cpu_pct')),
        cell(figure(s, scenario, 'services_cpu_pct')),
        cell(figure(s, scenario, 'client_cpu_pct')),
      ]),
    ),
  );
  const ours = aggregates[OURS]?.[scenario];
  const ratio = (key, a, b) => {
    const x = figure(a, scenario, key)?.median;
    const y = figure(b, scenario, key)?.median;
    return x === undefined || y === undefined || y === 0 ? '–' : `${num(x / y)}×`;
  };
  if (ours && aggregates[OURS_2]?.[scenario]) {
    md.push(
      '',
      `Two nodes ÷ one node (${OURS_2} ÷ ${OURS}; the issue's target: fanout-burst ` +
        'deliveries/s ≥ 0.5×):',
      '',
    );
    md.push(
      table(
        ['figure', 'two nodes ÷ one'],
        heads
          .filter(([key]) => !COUNTS.has(key))
          .map(([key, label, better]) => [`${label} (${better})`, ratio(key, OURS_2, OURS)]),
      ),
    );
  }
  const peers = servers.filter((s) => s !== OURS && s !== OURS_2);
  if (ours && peers.length) {
    md.push('', `Ratios, ${OURS} ÷ peer:`, '');
    md.push(
      table(
        ['figure', ...peers],
        heads.filter(([key]) => !COUNTS.has(key)).map(([key, label, better]) => [
          `${label} (${better})`,
          ...peers.map((p) => ratio(key, OURS, p)),
        ]),
      ),
    );
  }
}

md.push('', '## Booking and the machine\'s limits', '');
const limitRows = [
  ['paranimo', 'booking', 'Paranimo booking race (HTTP, load generator)'],
  ['paranimo', 'booking-spread', 'Paranimo bookings without a race (HTTP, --spread)'],
  ['postgres', 'booking-spread', 'pgbench, same SQL, every transaction its own slot'],
  ['postgres', 'booking-contended', 'pgbench, same SQL, the race\'s clients, slots and therapists'],
  ['redis', 'publish-p1', 'redis-benchmark PUBLISH, 2 subscribers'],
  ['redis', 'publish-p16', 'redis-benchmark PUBLISH, 2 subscribers, pipeline 16'],
].filter(([s, sc]) => aggregates[s]?.[sc]);
if (limitRows.length) {
  md.push(
    table(
      ['what', 'figures'],
      limitRows.map(([s, sc, what]) => [
        what,
        HEADLINES[sc].map(([key, label]) => `${label} ${cell(figure(s, sc, key))}`).join('; '),
      ]),
    ),
  );
} else {
  md.push('Not measured in this run.');
}

// The issue's targets, as far as this run's sizes can speak to them.
const targets = [];
const med = (s, sc, k) => figure(s, sc, k)?.median;
const judge = (name, ok, detail) =>
  targets.push([name, ok === undefined ? 'not measured' : ok ? 'met' : 'not met', detail]);
{
  const ours = med(OURS, 'idle', 'server_kib_per_connection');
  const node = med('node-ws', 'idle', 'server_kib_per_connection');
  judge(
    'memory per idle connection ≤ the Node ws peer\'s',
    ours === undefined || node === undefined ? undefined : ours <= node,
    `${num(ours)} vs ${num(node)} KiB at ${c.sizes.idle_connections} connections`,
  );
  const p99 = med(OURS, 'fanout', 'latency_p99_ms');
  judge(
    'fanout p99 under 100 ms (the target is at 10,000 subscribers)',
    p99 === undefined ? undefined : p99 < 100,
    `${num(p99)} ms at ${c.sizes.fanout_subscribers} subscribers`,
  );
  const rate = med(OURS, 'fanout-burst', 'deliveries_per_second');
  const bun = med('bun', 'fanout-burst', 'deliveries_per_second');
  const nodeRate = med('node-ws', 'fanout-burst', 'deliveries_per_second');
  judge(
    'fanout deliveries/s ≥ the Bun peer\'s (burst)',
    rate === undefined || bun === undefined ? undefined : rate >= bun,
    `${num(rate)} vs ${num(bun)} at ${c.sizes.fanout_subscribers} subscribers`,
  );
  judge(
    'fanout deliveries/s ≥ 5× the Node ws peer\'s (burst)',
    rate === undefined || nodeRate === undefined ? undefined : rate >= 5 * nodeRate,
    `${num(rate)} vs 5 × ${num(nodeRate)}`,
  );
  const twoNodes = med(OURS_2, 'fanout-burst', 'deliveries_per_second');
  judge(
    'fanout across two nodes ≥ half the single-node rate (burst; the target is at 10,000 ' +
      'subscribers)',
    rate === undefined || twoNodes === undefined ? undefined : twoNodes >= rate / 2,
    `${num(twoNodes)} vs ${num(rate)} / 2 deliveries/s ` +
      `(${rate ? num(twoNodes / rate) : '–'}×) at ${c.sizes.fanout_subscribers} subscribers, ` +
      `both nodes on CPU ${c.server_cpus}`,
  );
  const relay = med(OURS, 'relay', 'round_trip_p50_ms');
  const minimal = med('tokio-minimal', 'relay', 'round_trip_p50_ms');
  const relay99 = med(OURS, 'relay', 'round_trip_p99_ms');
  const minimal99 = med('tokio-minimal', 'relay', 'round_trip_p99_ms');
  judge(
    'relay round trip within 2× the tokio-minimal relay\'s (p50)',
    relay === undefined || minimal === undefined ? undefined : relay <= 2 * minimal,
    `p50 ${num(relay)} vs 2 × ${num(minimal)} ms; p99 ${num(relay99)} vs ${num(minimal99)} ms ` +
      `at ${c.sizes.relay_pairs} pairs`,
  );
  // Like with like: the race against pgbench's run of the same race, and bookings without a
  // race against pgbench's spread run (the SQL's insert rate).
  const booked = med(OURS, 'booking', 'bookings_per_second');
  const racedSql = med('postgres', 'booking-contended', 'confirmed_per_second');
  judge(
    'confirmed bookings/s ≥ half of pgbench on the same SQL, in the same race',
    booked === undefined || racedSql === undefined ? undefined : booked >= racedSql / 2,
    `${num(booked)} vs ${num(racedSql)} / 2 (${c.sizes.booking_clients} clients, ` +
      `${c.sizes.booking_slots} slots)`,
  );
  const spreadBooked = med(OURS, 'booking-spread', 'bookings_per_second');
  const insertRate = med('postgres', 'booking-spread', 'confirmed_per_second');
  judge(
    'confirmed bookings/s ≥ half of pgbench on the same SQL, without a race',
    spreadBooked === undefined || insertRate === undefined
      ? undefined
      : spreadBooked >= insertRate / 2,
    `${num(spreadBooked)} vs ${num(insertRate)} / 2`,
  );
  const overlapRuns = runs.filter(
    (r) => r.server === OURS && r.scenario.startsWith('booking') && r.summary,
  );
  const overlaps = overlapRuns.reduce(
    (n, r) => n + (r.summary.db_therapist_overlaps ?? 0) + (r.summary.db_client_overlaps ?? 0),
    0,
  );
  judge(
    'zero overlapping bookings in every run',
    overlapRuns.length ? overlaps === 0 : undefined,
    `${overlaps} overlaps in ${overlapRuns.length} run(s)`,
  );
  // Runs from before the key existed counted only 5xx and requests without an answer.
  const surfaced = overlapRuns.reduce(
    (n, r) =>
      n +
      (r.summary.errors_surfaced ??
        (r.summary.server_errors_5xx ?? 0) + (r.summary.transport_errors ?? 0)),
    0,
  );
  const atLimit = overlapRuns.reduce((n, r) => n + (r.summary.refusals_limit_422 ?? 0), 0);
  judge(
    'booking: no error surfaced to a client (deadlocks retried)',
    overlapRuns.length ? surfaced === 0 : undefined,
    `errors surfaced to clients: ${surfaced} in ${overlapRuns.length} run(s); refusals at ` +
      `the limit of 8 upcoming sessions (expected, not errors): ${atLimit}`,
  );
}
md.push('', '## The issue\'s targets at this run\'s sizes', '');
md.push(table(['target', 'verdict', 'figures'], targets));
md.push(
  '',
  `Two-node Paranimo (${OURS_2}) is two release nodes sharing the database and the Redis ` +
    `prefix, the subscribers spread over both and the publisher on the first, both nodes ` +
    `pinned to CPU ${c.server_cpus}, the single node's cores: the ratio prices clustering, ` +
    'not a second core. The Socket.IO figures come from its own Node load client ' +
    '(Socket.IO frames cannot be spoken by a plain websocket client), a single Node thread ' +
    'on the load core: compare them with each other, and with the rest only with that in mind.',
);

// Conditions of each run, so that a noisy run can be told apart.
md.push('', '## Conditions', '');
const steal = runs.filter((r) => typeof r.steal_pct === 'number').map((r) => r.steal_pct);
const loads = runs.filter((r) => typeof r.loadavg_1m === 'number').map((r) => r.loadavg_1m);
if (steal.length) {
  md.push(
    `CPU steal per run: median ${num(median(steal))} %, max ${num(Math.max(...steal))} %. ` +
      `Load average (1 min) at the start of a run: median ${num(median(loads))}, ` +
      `max ${num(Math.max(...loads))}.`,
  );
}
const coreBusy = (key) => runs.filter((r) => typeof r[key] === 'number').map((r) => r[key]);
const loadBusy = coreBusy('load_cpu_busy_pct');
const serverBusy = coreBusy('server_cpu_busy_pct');
if (loadBusy.length) {
  md.push(
    '',
    `Whole-core busy share, median over runs: load core ${num(median(loadBusy))} %, server ` +
      `core ${num(median(serverBusy))} %. A server core much busier than the server process ` +
      `(tables above) means other work shared it; a client near 100 % means the client, not ` +
      `the server, set the pace of that run.`,
  );
}
const trouble = runs.filter((r) => r.skipped || r.exit !== 0 || r.summary?.ok === false);
md.push('', '## Skipped and failed runs', '');
md.push(
  trouble.length
    ? table(
        ['round', 'server', 'scenario', 'what happened'],
        trouble.map((r) => [
          r.round,
          r.server,
          r.scenario,
          r.skipped
            ? `skipped: ${r.skipped}`
            : `exit ${r.exit}${r.summary?.ok === false ? ', the scenario reported a failure' : ''} (logs/${r.server}-${r.scenario}-r${r.round}.log)`,
        ]),
      )
    : 'None.',
);

// --- latency chart ----------------------------------------------------------------------

const panels = [
  ['fanout', 'fanout, paced: publish to delivery', WS_SERVERS.map((s) => [s, 'fanout'])],
  [
    'fanout-burst',
    'fanout, back to back: publish to delivery',
    WS_SERVERS.map((s) => [s, 'fanout-burst']),
  ],
  ['chat', 'chat: send to delivery', WS_SERVERS.map((s) => [s, 'chat'])],
  ['relay', 'relay: ping to echo (round trip)', WS_SERVERS.map((s) => [s, 'relay']), 'round_trip'],
  [
    'booking',
    'booking: request (Paranimo) / transaction (pgbench)',
    [
      ['paranimo', 'booking'],
      ['paranimo', 'booking-spread'],
      ['postgres', 'booking-spread'],
      ['postgres', 'booking-contended'],
    ],
  ],
];
let chart = 'not drawn: no latency figures in this run';
const dataLines = [];
const drawn = [];
for (const [name, title, series, prefix = 'latency'] of panels) {
  const rows = series.filter(([s, sc]) => figure(s, sc, `${prefix}_p50_ms`));
  if (rows.length === 0) continue;
  dataLines.push(`# ${name}`);
  rows.forEach(([s, sc], i) => {
    const label = sc.startsWith('booking-') ? `pgbench-${sc.slice(8)}` : s;
    const parts = ['p50', 'p99', 'max'].flatMap((p) => {
      const f = figure(s, sc, `${prefix}_${p}_ms`);
      // Log scale: clamp zero to a microsecond.
      return [f.median, f.min, f.max].map((v) => Math.max(v, 0.001));
    });
    dataLines.push([i, label, ...parts].join(' '));
  });
  dataLines.push('', '');
  drawn.push(title);
}
if (drawn.length) {
  writeFileSync(join(dir, 'latency.dat'), dataLines.join('\n'));
  const plots = drawn
    .map(
      (title, index) => `set title "${title}"
plot 'latency.dat' index ${index} using ($1-0.2):3:4:5 with yerrorbars pt 7 lc rgb "#1b9e77" title "p50", \\
     '' index ${index} using 1:6:7:8:xtic(2) with yerrorbars pt 5 lc rgb "#d95f02" title "p99", \\
     '' index ${index} using ($1+0.2):9:10:11 with yerrorbars pt 9 lc rgb "#7570b3" title "max"`,
    )
    .join('\n');
  const script = `set terminal pngcairo size 1400,${420 * drawn.length} font "sans,10"
set output 'latency.png'
set multiplot layout ${drawn.length},1
set logscale y
set ylabel "milliseconds (median over rounds, bars: min–max)"
set grid ytics
set key top left
set xrange [-0.6:*]
set offsets 0, 0.6, 0, 0
${plots}
unset multiplot
`;
  writeFileSync(join(dir, 'latency.gp'), script);
  const result = spawnSync('gnuplot', ['latency.gp'], { cwd: dir, encoding: 'utf8' });
  chart =
    result.error || result.status !== 0
      ? `not drawn: gnuplot ${result.error ? 'is not installed' : `failed: ${result.stderr.trim()}`} (data in latency.dat, script in latency.gp)`
      : 'latency.png';
}
md.push('', '## Latency distribution', '');
md.push(chart === 'latency.png' ? '![latency distributions](latency.png)' : `Chart ${chart}.`);
md.push('');

writeFileSync(join(dir, 'summary.md'), md.join('\n'));
writeFileSync(
  join(dir, 'results.json'),
  JSON.stringify({ conditions, aggregates, runs }, null, 2) + '\n',
);
console.log(`wrote ${join(dir, 'summary.md')}, results.json, ${chart}`);
