// Public API of src/synthetic (owned by the work on this area).
export {};
