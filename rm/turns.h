/* A prompt as the project stores it, read as the turns of a conversation, for
 * the formats that write conversations out (HH transcripts, TRL messages,
 * Arena conversations) and the importers that read them back:
 *   "P"                                   one user turn
 *   "P1\n\nAssistant: A1\n\nHuman: P2"    a dialogue: HH's transcript without
 *                                         its opening "\n\nHuman: "
 *   "S\n\nHuman: P1\n\nAssistant: ..."    the same after a system message S:
 *                                         text before the first "\n\nHuman:",
 *                                         as Anthropic's HH-style prompts had it
 * A later marker is followed by one space, which is not part of the turn. */
#ifndef RLHF_RM_TURNS_H
#define RLHF_RM_TURNS_H

#include <stdio.h>

#include "util/text.h"

#define RM_HUMAN "\n\nHuman:"
#define RM_ASSISTANT "\n\nAssistant:"

/* Whether the prompt opens with a system message (the third form). */
int rm_prompt_has_system(const char *prompt);

/* Appends the prompt's HH transcript, "\n\nHuman: P" (or "S\n\nHuman: P"),
 * without the "\n\nAssistant:" that asks for the answer. 0 or RLHF_ENOMEM. */
int rm_prompt_transcript(StrBuf *b, const char *prompt);

/* Writes the prompt as a JSON list of {"role", "content"} messages (system,
 * user, assistant), then an assistant message holding answer unless answer
 * is NULL. A text whose turns do not end with the user's is one user message. */
void rm_write_messages(FILE *f, const char *prompt, const char *answer);

#endif
