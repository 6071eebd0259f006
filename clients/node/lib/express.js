"use strict";
const { createHttpCore } = require("./http");

/**
 * Express middleware: `app.use(shieldExpress({ limiter, key, trustedProxies, exempt, cost,
 * legacyHeaders }))`, or per route: `app.get("/search", shieldExpress({ limiter: searchLimiter }), handler)`.
 * Sets RateLimit-Policy and RateLimit on every limited response; answers 429 with Retry-After and
 * an application/problem+json body when a policy refuses.
 */
function shieldExpress(options) {
  const core = createHttpCore(options);
  return function redisShield(req, res, next) {
    const path = req.path || (req.url || "/").split("?")[0];
    if (core.isExempt(req, path)) return next();
    core.check(req).then(
      (result) => {
        for (const [name, value] of Object.entries(core.headers(result))) res.setHeader(name, value);
        if (result.allowed) return next();
        res.statusCode = 429;
        res.setHeader("Content-Type", "application/problem+json");
        res.end(JSON.stringify(core.problem(result)));
      },
      (error) => next(error),
    );
  };
}

module.exports = { shieldExpress };
