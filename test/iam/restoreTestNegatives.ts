/**
 * The calls restore tests must never be allowed to make (issue 22): volumes only from
 * this stage's own managed snapshots and only tagged as its restore tests at creation;
 * deletion only of volumes so tagged. Part of the simulation's negative set.
 */
import type { IamRequest } from './requests.ts';

type Request = (
  action: string,
  resource: string,
  context?: Record<string, string | string[]>,
) => IamRequest;

/** Negative cases for the `restoreTest` role (and `ops`, which runs console tests). */
export function restoreTestNegatives(
  stage: string,
  prefix: string,
  region: string,
  account: string,
  request: Request,
): { roles: readonly string[]; request: IamRequest; why: string }[] {
  const snapshot = `arn:aws:ec2:${region}::snapshot/snap-0bbbbbbbbbbbbbbbb`;
  const volume = `arn:aws:ec2:${region}:${account}:volume/vol-0bbbbbbbbbbbbbbbb`;
  const newVolume = `arn:aws:ec2:${region}:${account}:volume/*`;
  const [managed, deployment, restoreTest] = ['managed', 'deployment', 'restore-test'].map(
    (k) => `${prefix}${k}`,
  ) as [string, string, string];
  const resourceTags = (tags: Record<string, string>) =>
    Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v]));
  const requestTags = (tags: Record<string, string>) => ({
    ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
    'aws:TagKeys': Object.keys(tags),
  });
  const testTags = { [restoreTest]: 'true', [deployment]: stage };
  const cases: { roles: readonly string[]; request: IamRequest; why: string }[] = [];
  for (const [label, tags] of [
    ['an unmanaged', { [deployment]: stage }],
    ["another stage's", { [managed]: 'true', [deployment]: `${stage}-other` }],
    ['an untagged', {}],
  ] as const)
    cases.push({
      roles: ['restoreTest'],
      request: request('ec2:CreateVolume', snapshot, resourceTags(tags)),
      why: `CreateVolume (restore test) from ${label} snapshot`,
    });
  for (const [label, tags] of [
    ['without the restore-test tag', { [deployment]: stage }],
    ["with another stage's tags", { [restoreTest]: 'true', [deployment]: `${stage}-other` }],
    ['untagged', {}],
  ] as const)
    cases.push({
      roles: ['restoreTest'],
      request: request('ec2:CreateVolume', newVolume, requestTags(tags)),
      why: `CreateVolume of a volume ${label}`,
    });
  for (const [label, tags] of [
    ["a user's volume of this stage", { [deployment]: stage, Name: 'data' }],
    ["another stage's restore-test volume", { [restoreTest]: 'true', [deployment]: `${stage}-x` }],
    ['a restore-test volume of no stage', { [restoreTest]: 'true' }],
    ['an untagged volume', {}],
  ] as const)
    cases.push({
      roles: ['restoreTest', 'ops'],
      request: request('ec2:DeleteVolume', volume, resourceTags(tags)),
      why: `DeleteVolume of ${label}`,
    });
  for (const action of ['ec2:AttachVolume', 'ec2:DetachVolume', 'ec2:ModifyVolume'])
    cases.push({
      roles: ['restoreTest'],
      request: request(action, volume, resourceTags(testTags)),
      why: `${action} of a restore-test volume (tests only create, read and delete)`,
    });
  cases.push({
    roles: ['restoreTest'],
    request: request(
      'ec2:DeleteSnapshot',
      snapshot,
      resourceTags({ [managed]: 'true', [deployment]: stage }),
    ),
    why: 'DeleteSnapshot of an own managed snapshot from the restore-test role',
  });
  return cases;
}
