// The live slider's entry point (Streamlit components v2 sends this text with every rerun, so it stays small).
// The solver and the view (component.js, about 30 kB) come once, inside a full payload (header.module), and
// are kept for the page's life, keyed by their hash (header.module_key): a rerun that only moves lambda sends
// a header of a few hundred bytes. A page that lacks the module (or the arrays) of a header asks the server
// for a full payload with the "missing" state value.

const MODULES = (globalThis.__inverseClassificationLiveSlider ??= new Map());  // module_key -> Promise<module>
const REQUESTED = new Set();  // payload keys asked for once already (a lost request is not repeated in a loop)

function header(data) {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
  const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  return JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length)));
}

export default function (component) {
  const { data, setStateValue } = component;
  if (!data) return undefined;
  const h = header(data);
  let module = MODULES.get(h.module_key);
  if (!module && h.module) {
    const url = URL.createObjectURL(new Blob([h.module], { type: "text/javascript" }));
    module = import(url);
    MODULES.set(h.module_key, module);
  }
  if (!module) {
    if (!REQUESTED.has(h.key)) {
      REQUESTED.add(h.key);
      setStateValue("missing", { key: h.key, nonce: Math.random() });
    }
    return undefined;
  }
  let cancelled = false, cleanup;
  module.then((live) => { if (!cancelled) cleanup = live.default(component); })
    .catch((error) => { console.error("live slider: the module did not load", error); });
  return () => {
    cancelled = true;
    if (cleanup) cleanup();
  };
}
