/*
 * capi-pixel.js: the event id capi-stream sends, computed in the browser, so the Meta pixel
 * and the Conversions API report one conversion once (same event_name + event_id).
 *
 * No secret is involved: event_id = UUIDv5(NAMESPACE, tenantId + ":" + source + ":" +
 * sourceEventId), the same formula as capi_stream.event.build_event_id, with each source's
 * page key turned into its sourceEventId by the table below (capi_stream/pixel.py holds the
 * same table; a test runs this file with node and compares every source).
 *
 *   const id = await capiPixel.eventId(TENANT_ID, "stripe", sessionId);
 *   fbq("track", "Purchase", {value: 150, currency: "USD"}, {eventID: id});
 *
 * capiPixel.lookup() asks `capi serve` (GET /pixel/{tenant}/{source}/event-id) for the same
 * id plus, for Stripe keys, the hashed external_id the server sent for that purchase.
 */
(function (root) {
  "use strict";

  var NAMESPACE = "6f1c1d4e-5b0a-4c2e-9a53-0c8e4a1f7d21";
  var SCHEMES = {
    stripe: { eventName: "Purchase", suffix: "" },
    denefits: { eventName: "Purchase", suffix: ":created" },
    perspective: { eventName: "InitiateCheckout", suffix: ":converted" },
    ghl: { eventName: "AddToCart", suffix: "" },
    chatbot: { eventName: "Lead", suffix: ":qualified" },
  };
  var KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

  function scheme(source) {
    var found = Object.prototype.hasOwnProperty.call(SCHEMES, source) ? SCHEMES[source] : null;
    if (!found) throw new Error("capi-pixel: no page-reproducible id for source " + source);
    return found;
  }

  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += (bytes[i] + 0x100).toString(16).slice(1);
    return out;
  }

  function uuidBytes(uuid) {
    var digits = uuid.replace(/-/g, "");
    var bytes = new Uint8Array(16);
    for (var i = 0; i < 16; i++) bytes[i] = parseInt(digits.substr(i * 2, 2), 16);
    return bytes;
  }

  function subtle() {
    var c = root.crypto || (typeof crypto !== "undefined" ? crypto : null);
    if (!c || !c.subtle) throw new Error("capi-pixel: crypto.subtle needs a secure (https) page");
    return c.subtle;
  }

  // RFC 4122 version 5: SHA-1 of namespace bytes + UTF-8 name, version and variant bits set.
  function uuid5(namespace, name) {
    var ns = uuidBytes(namespace);
    var text = new TextEncoder().encode(name);
    var data = new Uint8Array(ns.length + text.length);
    data.set(ns, 0);
    data.set(text, ns.length);
    return subtle().digest("SHA-1", data).then(function (digest) {
      var b = new Uint8Array(digest).slice(0, 16);
      b[6] = (b[6] & 0x0f) | 0x50;
      b[8] = (b[8] & 0x3f) | 0x80;
      var h = hex(b);
      return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
    });
  }

  function sourceEventId(source, key) {
    var s = scheme(source);
    var trimmed = String(key).trim();
    if (!KEY_PATTERN.test(trimmed)) throw new Error("capi-pixel: key must be 1-255 printable characters");
    return trimmed + s.suffix;
  }

  function eventId(tenantId, source, key) {
    var name = String(tenantId).toLowerCase() + ":" + source + ":" + sourceEventId(source, key);
    return uuid5(NAMESPACE, name);
  }

  // Perspective without a contact id: the adapter keys on the email's SHA-256 (32 hex).
  function perspectiveEmailPerson(email) {
    var data = new TextEncoder().encode(String(email).trim().toLowerCase());
    return subtle().digest("SHA-256", data).then(function (digest) {
      return "email-" + hex(new Uint8Array(digest)).slice(0, 32);
    });
  }

  // The pixel's own cookies, to hand to the server through the source's documented fields
  // (Stripe metadata fbp/fbc, form hidden fields fbp/fbc).
  function cookies() {
    var found = { fbp: null, fbc: null };
    var doc = root.document;
    if (!doc || !doc.cookie) return found;
    doc.cookie.split(";").forEach(function (part) {
      var pair = part.trim().split("=");
      if (pair[0] === "_fbp") found.fbp = decodeURIComponent(pair.slice(1).join("="));
      if (pair[0] === "_fbc") found.fbc = decodeURIComponent(pair.slice(1).join("="));
    });
    return found;
  }

  // Ask capi serve for the id and (Stripe) the external_id; polls while the server has not
  // yet stored the purchase, until timeoutMs; always resolves, falling back to the local id.
  function lookup(serverUrl, tenantId, source, key, options) {
    var timeoutMs = (options && options.timeoutMs) || 8000;
    var fetcher = (options && options.fetch) || root.fetch;
    var url = serverUrl.replace(/\/$/, "") + "/pixel/" + encodeURIComponent(tenantId) + "/" +
      encodeURIComponent(source) + "/event-id?key=" + encodeURIComponent(key);
    var deadline = Date.now() + timeoutMs;
    return eventId(tenantId, source, key).then(function (localId) {
      var fallback = { event_id: localId, event_name: scheme(source).eventName, external_id: null };
      function attempt(delay) {
        return fetcher(url, { credentials: "omit" }).then(function (response) {
          if (response.ok) return response.json();
          // A refusal (origin, key, tenant) will not change: fire with the local id now.
          var final = response.status >= 400 && response.status < 500 && response.status !== 429;
          return final ? fallback : null;
        }).catch(function () { return null; }).then(function (answer) {
          if (answer && (answer.external_id || !answer.pending)) return answer;
          if (Date.now() + delay > deadline) return answer || fallback;
          return new Promise(function (resolve) { setTimeout(resolve, delay); })
            .then(function () { return attempt(Math.min(delay * 2, 2000)); });
        });
      }
      return attempt(250);
    });
  }

  var api = {
    NAMESPACE: NAMESPACE,
    SCHEMES: SCHEMES,
    eventName: function (source) { return scheme(source).eventName; },
    sourceEventId: sourceEventId,
    eventId: eventId,
    perspectiveEmailPerson: perspectiveEmailPerson,
    cookies: cookies,
    lookup: lookup,
  };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.capiPixel = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
