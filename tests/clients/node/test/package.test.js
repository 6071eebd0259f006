"use strict";
// `npm pack` builds the package; the packed package works through require() and import, and
// its TypeScript types check an application's usage file (test/usage.ts) with tsc --noEmit.
const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { npmPack } = require("../support");

const HERE = path.resolve(__dirname, "..");

describe("the npm package", () => {
  let dir;
  let tarball;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "shield-node-pack-"));
    tarball = npmPack(dir);
    // An application folder: the packed package in node_modules, and the test's npm packages.
    const modules = path.join(dir, "app", "node_modules");
    fs.mkdirSync(path.join(modules, "redis-shield"), { recursive: true });
    execFileSync("tar", ["-xzf", tarball, "-C", path.join(modules, "redis-shield"), "--strip-components=1"]);
    for (const name of fs.readdirSync(path.join(HERE, "node_modules"))) {
      if (name !== "redis-shield" && !name.startsWith(".")) fs.symlinkSync(path.join(HERE, "node_modules", name), path.join(modules, name));
    }
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("npm pack builds a tarball holding the entry points, the types, the library and the demo, and nothing else", () => {
    const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).trim().split("\n").sort();
    assert.deepEqual(files, [
      "package/demo.js", "package/index.d.ts", "package/index.js", "package/index.mjs",
      "package/lib/express.js", "package/lib/fastify.js", "package/lib/headers.js", "package/lib/http.js",
      "package/lib/limiter.js", "package/lib/policy.js", "package/lib/redis.js", "package/lib/shield-call.js",
      "package/package.json",
    ]);
  });

  it("require() and import of the packed package give the same classes", () => {
    const app = path.join(dir, "app");
    fs.writeFileSync(path.join(app, "cjs.js"), 'const s = require("redis-shield"); console.log(typeof s.RateLimiter, typeof s.shieldExpress, typeof s.shieldFastify);\n');
    fs.writeFileSync(path.join(app, "esm.mjs"),
      'import { RateLimiter, shieldExpress, shieldFastify } from "redis-shield";\n' +
      'import { createRequire } from "node:module";\n' +
      'const same = createRequire(import.meta.url)("redis-shield").RateLimiter === RateLimiter;\n' +
      'console.log(typeof RateLimiter, typeof shieldExpress, typeof shieldFastify, same);\n');
    const run = (file) => execFileSync(process.execPath, [file], { cwd: app, encoding: "utf8" }).trim();
    assert.equal(run("cjs.js"), "function function function");
    assert.equal(run("esm.mjs"), "function function function true");
  });

  it("tsc type-checks an application's use of the packed package's types", () => {
    const app = path.join(dir, "app");
    fs.copyFileSync(path.join(HERE, "test", "usage.ts"), path.join(app, "usage.ts"));
    fs.writeFileSync(path.join(app, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: "commonjs", target: "es2020", esModuleInterop: true, skipLibCheck: true, types: ["node"] },
      files: ["usage.ts"],
    }));
    const done = spawnSync(process.execPath, [path.join(HERE, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], { cwd: app, encoding: "utf8" });
    assert.equal(done.status, 0, done.stdout + done.stderr);
  });
});
