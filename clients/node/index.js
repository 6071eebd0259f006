"use strict";
// redis-shield: rate limits over Redis Shield's commands, for ioredis and node-redis, with Express
// and Fastify middleware.
const { RateLimiter, TimeoutError } = require("./lib/limiter");
const { shieldExpress } = require("./lib/express");
const { shieldFastify } = require("./lib/fastify");
const { createHttpCore, clientIp } = require("./lib/http");
const { headersFor } = require("./lib/headers");

module.exports = { RateLimiter, TimeoutError, shieldExpress, shieldFastify, createHttpCore, clientIp, headersFor };
