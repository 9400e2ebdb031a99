// Application-consistent snapshot sets (issue 21, part 1) in the stack: the fsfreeze
// SSM document (deploy/ssm/snapkeeper-fsfreeze.yml, created per stage), and the IAM
// statements of the functions that run pre/post scripts (backup, worker).
'use strict';

const { readFileSync } = require('node:fs');
const { join } = require('node:path');

const DOCUMENT_NAME = /^[A-Za-z0-9_.-]{3,128}$/;

// The stage's own copy of the shipped document (document names are per account-region).
const fsfreezeDocumentName = `\${self:service}-fsfreeze-\${sls:stage}`;

function documentsOf(raw) {
  const list = String(raw ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '');
  for (const d of list)
    if (!DOCUMENT_NAME.test(d))
      throw new Error(`custom.consistency.documents: "${d}" is not an SSM document name`);
  return [...new Set(list)];
}

const arn = (rest) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:${rest}` });
const documentArn = (name) => arn(`ssm:\${AWS::Region}:\${AWS::AccountId}:document/${name}`);
// AWS's own VSS document (`vss`, Windows): an AWS-owned document's ARN has no account.
const VSS_DOCUMENT = 'AWSEC2-CreateVssSnapshot';
const vssDocumentArn = arn(`ssm:\${AWS::Region}::document/${VSS_DOCUMENT}`);

// SendCommand authorizes the document and each instance, separately (Service
// Authorization Reference, AWS Systems Manager: SendCommand on `document` and `instance`;
// the instance supports `ssm:resourceTag/${TagKey}`). So: only the named documents (and
// AWS's AWSEC2-CreateVssSnapshot, which makes the snapshots with the instance profile's
// permissions, never the function's), and only on instances carrying the opt-in tag —
// `snapkeeper:consistency`, or, when a schedule sets the `consistency` option,
// `snapkeeper:backup` as well.
function consistencyStatements(documents, scheduleOptIn) {
  const onInstances = (sid, tagKey) => ({
    Sid: sid,
    Effect: 'Allow',
    Action: 'ssm:SendCommand',
    Resource: arn(`ec2:\${AWS::Region}:\${AWS::AccountId}:instance/*`),
    Condition: { Null: { [`ssm:resourceTag/${tagKey}`]: 'false' } },
  });
  return [
    {
      Sid: 'SendOnlyTheConsistencyDocuments',
      Effect: 'Allow',
      Action: 'ssm:SendCommand',
      Resource: [...[fsfreezeDocumentName, ...documents].map(documentArn), vssDocumentArn],
    },
    onInstances('SendCommandsOnlyToConsistencyTaggedInstances', 'snapkeeper:consistency'),
    ...(scheduleOptIn
      ? [onInstances('SendCommandsToInstancesOfConsistentSchedules', 'snapkeeper:backup')]
      : []),
    {
      // GetCommandInvocation supports no resource-level permission.
      Sid: 'ReadCommandInvocations',
      Effect: 'Allow',
      Action: 'ssm:GetCommandInvocation',
      Resource: '*',
    },
  ];
}

function fsfreezeDocument() {
  const yaml = require('yaml');
  const file = join(__dirname, '..', 'deploy', 'ssm', 'snapkeeper-fsfreeze.yml');
  return {
    ConsistencyFsfreezeDocument: {
      Type: 'AWS::SSM::Document',
      Properties: {
        Name: fsfreezeDocumentName,
        DocumentType: 'Command',
        DocumentFormat: 'JSON',
        UpdateMethod: 'NewVersion',
        Content: yaml.parse(readFileSync(file, 'utf8')),
      },
    },
  };
}

async function consistencySettings(resolveVariable) {
  const documents = documentsOf(await resolveVariable('self:custom.consistency.documents'));
  const schedules = await resolveVariable('self:custom.schedules');
  const scheduleOptIn = (Array.isArray(schedules) ? schedules : []).some(
    (s) => s && s.consistency !== undefined && !/^\s*crash\s*$/i.test(String(s.consistency)),
  );
  return { documents, scheduleOptIn };
}

module.exports = {
  fsfreezeDocumentName,
  consistencyStatements,
  consistencySettings,
  fsfreezeDocument,
  documentsOf,
};
