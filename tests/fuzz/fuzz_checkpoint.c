/* Fuzz target: the checkpoint readers, ours (magic RLHFCKPT, versions 1 and
 * 2) and llama2.c's (anything else); model_load picks by the magic as the CLI
 * does, and model_verify reads the whole file against its checksum. */
#include "model/checkpoint.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file("ckpt.bin", data, size);
    Model m;
    Err err = {0};
    if (model_load(path, &m, &err) == RLHF_OK) {
        Tokenizer *t = NULL;
        if (m.tokenizer && model_load_tokenizer(&m, path, NULL, &t, &err) == RLHF_OK) tok_free(t);
        model_free(&m);
    }
    int has;
    (void)model_verify(path, &has, &err);
    unlink(path);
    return 0;
}
