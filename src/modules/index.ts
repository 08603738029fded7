// Public API of src/modules (owned by the work on this area).
export {};
