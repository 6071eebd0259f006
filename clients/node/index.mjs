// The ES module entry point: the same objects as the CommonJS one.
import shield from "./index.js";

export const { RateLimiter, TimeoutError, shieldExpress, shieldFastify, createHttpCore, clientIp, headersFor } = shield;
