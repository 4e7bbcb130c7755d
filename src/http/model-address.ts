// How an answer names the model version that computed it: the headers beside the JSON's `model` and `model_version`.

/** The model that answered. */
export const MODEL_NAME_HEADER = 'x-mhe-model'
/** The served version that answered (the repository's version folder; 1 for MHE_MODEL). */
export const MODEL_VERSION_HEADER = 'x-mhe-model-version'
