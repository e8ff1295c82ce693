#include <check.h>
#include <string.h>

#include "treq.h"

unsigned treq_events;

static struct treq *treq_of(dot_req_t *req)
{
	return (struct treq *)((char *)req - offsetof(struct treq, u.req));
}

static void on_answer(dot_req_t *req, const uint8_t *msg, size_t len)
{
	struct treq *t = treq_of(req);

	ck_assert_msg(!t->answered && !t->failed, "a second callback for one request");
	ck_assert_uint_le(len, sizeof(t->answer));
	memcpy(t->answer, msg, len);
	t->answer_len = len;
	t->answered = 1;
	t->done_at = ++treq_events;
}

static void on_failed(dot_req_t *req, int counted, const char *why)
{
	struct treq *t = treq_of(req);

	(void)why;
	ck_assert_msg(!t->answered && !t->failed, "a second callback for one request");
	t->failed = 1;
	t->counted = counted;
	t->done_at = ++treq_events;
}

void treq_init(struct treq *t, const char *name)
{
	memset(t, 0, sizeof(*t));
	t->len = dnsmsg_build_probe(name, 1, 0, t->msg, sizeof(t->msg));
	ck_assert_uint_gt(t->len, 0);
	ck_assert_int_eq(dnsmsg_parse_query(t->msg, t->len, &t->q), DNSMSG_OK);
	t->u.req.question = t->q.question;
	t->u.req.question_len = t->q.question_len;
	t->u.req.on_answer = on_answer;
	t->u.req.on_failed = on_failed;
}
