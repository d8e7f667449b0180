// Public surface of the agent domain. Filled in by the domain's own modules.
export {};
