/**
 * The core scenarios with the registry on S3 storage: the Ceph RGW that @fw/tooling's global setup
 * starts (or the server FW_TEST_S3_* points at), each run in a fresh prefix of the test bucket.
 */
import { randomUUID } from "node:crypto";
import { s3Driver } from "@fw/storage-r2/s3";
import { describeCoreSuite } from "../helpers/core-suite.js";
import { startTestRegistry } from "../helpers/registry.js";

function fromEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; the Ceph global setup of @fw/tooling sets it`);
  return value;
}

describeCoreSuite("core scenarios with npm on s3 storage (Ceph RGW)", () =>
  startTestRegistry({
    storage: s3Driver({
      endpoint: fromEnv("FW_TEST_S3_ENDPOINT"),
      bucket: fromEnv("FW_TEST_S3_BUCKET"),
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: fromEnv("FW_TEST_S3_ACCESS_KEY"), secretAccessKey: fromEnv("FW_TEST_S3_SECRET_KEY") },
      prefix: `fw-server-e2e/${randomUUID()}`,
    }),
  }),
);
