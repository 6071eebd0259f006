"use strict";
const { createHttpCore } = require("./http");

/**
 * Fastify plugin: `fastify.register(shieldFastify, { limiter, key, trustedProxies, exempt, cost,
 * legacyHeaders })`. A route changes it with `config: { rateLimit: { limiter, key, cost } }`, or
 * leaves it with `config: { rateLimit: false }`. It applies to the routes of the instance it is
 * registered on and of its children (it does not create a new encapsulation context).
 */
function shieldFastify(fastify, options, done) {
  const core = createHttpCore(options);
  fastify.addHook("onRequest", async (request, reply) => {
    const config = (request.routeOptions && request.routeOptions.config) || request.routeConfig || {};
    const route = config.rateLimit;
    if (route === false) return;
    const path = request.url.split("?")[0];
    if (core.isExempt(request, path)) return;
    const result = await core.check(request, route || {});
    reply.headers(core.headers(result));
    if (!result.allowed) {
      reply.code(429).type("application/problem+json").send(JSON.stringify(core.problem(result)));
      return reply;
    }
  });
  done();
}
// What fastify-plugin does: the hook applies outside the plugin's own context too.
shieldFastify[Symbol.for("skip-override")] = true;
shieldFastify[Symbol.for("fastify.display-name")] = "redis-shield";

module.exports = { shieldFastify };
