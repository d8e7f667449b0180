import assert from 'node:assert/strict';
import type { AgentHealth, VmContainerRef } from '../../activities/vm/types.js';
import {
  applyVmEvent,
  InvalidVmTransition,
  idleDeadlineMs,
  isUsable,
  newVmState,
  type VmEvent,
  type VmState,
} from '../../workflows/vm/state.js';
import { claim, newPoolState, shortfall } from '../../workflows/vm-pool/state.js';

const ref: VmContainerRef = {
  containerName: 'ffc-vm-u1',
  containerId: 'c1',
  volumeName: 'v1',
  runDir: '/run/x',
};
const health = (gh: boolean, claude: boolean): AgentHealth => ({
  agentVersion: '1',
  protocolVersion: 1,
  uptimeMs: 1,
  rssBytes: 1,
  liveSessions: 0,
  sessions: 0,
  terminals: 0,
  connections: 1,
  credentials: { gh, claude },
});
const policy = { maxCrashes: 3, windowMs: 600_000 };

function run(events: VmEvent[], start: VmState = newVmState('u1', 'vm-1', 0)): VmState {
  return events.reduce((s, e, i) => applyVmEvent(s, e, (i + 1) * 1000), start);
}

const provisioned = (gh = false, claude = false) =>
  run([
    { type: 'PROVISION_STARTED' },
    { type: 'CONTAINER_ASSIGNED', container: ref },
    { type: 'AGENT_ANSWERED', health: health(gh, claude) },
  ]);

describe('vm actor state (pure)', () => {
  it('provisions into ONBOARDING until both logins exist, then READY', () => {
    const s = provisioned();
    assert.equal(s.status, 'ONBOARDING');
    assert.ok(isUsable(s));
    const ghOnly = applyVmEvent(s, { type: 'HEALTH_OK', health: health(true, false) }, 10_000);
    assert.equal(ghOnly.status, 'ONBOARDING');
    assert.deepEqual(ghOnly.onboarding, { githubCli: true, claude: false });
    const both = applyVmEvent(ghOnly, { type: 'HEALTH_OK', health: health(true, true) }, 11_000);
    assert.equal(both.status, 'READY');
  });

  it('goes back to ONBOARDING when a login disappears', () => {
    const ready = provisioned(true, true);
    assert.equal(ready.status, 'READY');
    assert.equal(
      applyVmEvent(ready, { type: 'HEALTH_OK', health: health(false, true) }, 9_000).status,
      'ONBOARDING',
    );
  });

  it('suspends and resumes, keeping the container', () => {
    const s = run([{ type: 'SUSPEND_STARTED' }, { type: 'SUSPENDED' }], provisioned(true, true));
    assert.equal(s.status, 'SUSPENDED');
    assert.equal(s.container, ref);
    assert.ok(!isUsable(s));
    const resumed = run(
      [{ type: 'RESUME_STARTED' }, { type: 'AGENT_ANSWERED', health: health(true, true) }],
      s,
    );
    assert.equal(resumed.status, 'READY');
    assert.equal(resumed.suspendedAtMs, null);
  });

  it('restarts after a crash and fails after too many crashes in the window', () => {
    let s = provisioned(true, true);
    for (let i = 0; i < 2; i++) {
      s = applyVmEvent(s, { type: 'CRASH_DETECTED', policy, detail: 'exit 137' }, 20_000 + i);
      assert.equal(s.operation, 'restart');
      s = applyVmEvent(s, { type: 'AGENT_ANSWERED', health: health(true, true) }, 20_500 + i);
    }
    assert.equal(s.restarts, 2);
    s = applyVmEvent(s, { type: 'CRASH_DETECTED', policy, detail: 'exit 137' }, 30_000);
    assert.equal(s.status, 'FAILED');
    assert.match(s.failureReason ?? '', /crashed 3 times.*exit 137/);
  });

  it('forgets crashes older than the window', () => {
    let s = provisioned(true, true);
    for (const at of [0, 700_000, 1_400_000]) {
      s = applyVmEvent(s, { type: 'CRASH_DETECTED', policy, detail: 'x' }, at);
      s = applyVmEvent(s, { type: 'AGENT_ANSWERED', health: health(true, true) }, at + 1);
    }
    assert.equal(s.status, 'READY');
    assert.equal(s.restarts, 3);
  });

  it('retries provisioning from FAILED', () => {
    const failed = run([{ type: 'PROVISION_STARTED' }, { type: 'FAILED', reason: 'agent did not answer' }]);
    assert.equal(failed.status, 'FAILED');
    const retried = applyVmEvent(failed, { type: 'PROVISION_STARTED' }, 5_000);
    assert.equal(retried.operation, 'provision');
    assert.equal(retried.failureReason, null);
  });

  it('terminates from any state and then refuses everything but touches', () => {
    for (const start of [newVmState('u1', 'vm', 0), provisioned(), run([{ type: 'PROVISION_STARTED' }])]) {
      const done = run([{ type: 'TERMINATE_STARTED' }, { type: 'TERMINATED' }], start);
      assert.equal(done.status, 'TERMINATED');
      assert.equal(done.container, null);
      assert.throws(() => applyVmEvent(done, { type: 'PROVISION_STARTED' }, 1), InvalidVmTransition);
      assert.throws(() => applyVmEvent(done, { type: 'TERMINATE_STARTED' }, 1), InvalidVmTransition);
    }
  });

  it('rejects transitions that make no sense', () => {
    const fresh = newVmState('u1', 'vm', 0);
    assert.throws(() => applyVmEvent(fresh, { type: 'SUSPEND_STARTED' }, 1), InvalidVmTransition);
    assert.throws(() => applyVmEvent(fresh, { type: 'RESUME_STARTED' }, 1), InvalidVmTransition);
    assert.throws(() => applyVmEvent(fresh, { type: 'SUSPENDED' }, 1), InvalidVmTransition);
    const busy = run([{ type: 'PROVISION_STARTED' }]);
    assert.throws(() => applyVmEvent(busy, { type: 'PROVISION_STARTED' }, 1), InvalidVmTransition);
    assert.throws(
      () => applyVmEvent(busy, { type: 'CRASH_DETECTED', policy, detail: '' }, 1),
      InvalidVmTransition,
    );
  });

  it('restarts the idle period on every touch and on resume', () => {
    const s = provisioned();
    const touched = applyVmEvent(s, { type: 'TOUCHED' }, 50_000);
    assert.equal(idleDeadlineMs(touched, 1000), 51_000);
    assert.equal(touched.updatedAtMs, s.updatedAtMs, 'a touch is not a state change');
  });
});

describe('warm pool state (pure)', () => {
  const a: VmContainerRef = { ...ref, containerName: 'ffc-pool-a', containerId: 'a' };
  const b: VmContainerRef = { ...ref, containerName: 'ffc-pool-b', containerId: 'b' };

  it('hands out the oldest ready container and remembers the claim', () => {
    const state = { ...newPoolState(2), ready: [a, b] };
    const first = claim(state, 'vm:u1/1');
    assert.equal(first.container, a);
    assert.equal(shortfall(first.state), 1);
    const retried = claim(first.state, 'vm:u1/1');
    assert.equal(retried.container, a, 'a retried claim gets the same container');
    assert.deepEqual(retried.state.ready, [b]);
  });

  it('answers null when empty, and remembers that too', () => {
    const empty = claim(newPoolState(1), 'vm:u2/1');
    assert.equal(empty.container, null);
    const later = claim({ ...empty.state, ready: [a] }, 'vm:u2/1');
    assert.equal(later.container, null, 'the same claim must not take a container after reporting none');
  });
});
