// Public surface of the session domain. Filled in by the domain's own modules.
export {};
