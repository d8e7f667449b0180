// Public surface of the ratchet domain. Filled in by the domain's own modules.
export {};
