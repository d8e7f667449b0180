// Public surface of the workspace domain. Filled in by the domain's own modules.
export {};
