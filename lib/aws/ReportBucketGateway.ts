import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { SnapkeeperConfig } from '../config/environment.ts';
import { recordCalls } from './callRecorder.ts';
import { clientSettings } from './clients.ts';
import { toAwsCallError } from './errors.ts';

/**
 * Where the console `report` action writes the coverage page when a bucket is configured.
 *
 * @example
 * await createReportBucketGateway(config, 'ops-reports').putPage('snapkeeper/coverage.html', html);
 */
export class ReportBucketGateway {
  readonly #client: S3Client;
  readonly #bucket: string;

  public constructor(client: S3Client, bucket: string) {
    this.#client = client;
    this.#bucket = bucket;
  }

  /** Writes one HTML page, encrypted at rest; returns its `s3://` address. */
  public async putPage(key: string, html: string): Promise<string> {
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Body: html,
          ContentType: 'text/html; charset=utf-8',
          ServerSideEncryption: 'AES256',
        }),
      );
    } catch (error) {
      throw toAwsCallError('PutObject', error);
    }
    return `s3://${this.#bucket}/${key}`;
  }
}

/** Builds the report bucket gateway for a configuration. */
export function createReportBucketGateway(
  config: Pick<SnapkeeperConfig, 'region' | 'maxAttempts' | 'requestTimeoutMs' | 'endpoint'>,
  bucket: string,
): ReportBucketGateway {
  return new ReportBucketGateway(
    recordCalls(
      new S3Client({ ...clientSettings(config), forcePathStyle: config.endpoint !== undefined }),
    ),
    bucket,
  );
}
