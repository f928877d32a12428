/* Unit tests for the error contract (util/err.h). */
#include "util/err.h"
#include "unit.h"
#include <pthread.h>

static void test_set_and_refuse(void)
{
	err_clear();
	CHECK(!err_has_msg());
	CHECK_STR(err_msg(), "unknown error");
	CHECK_INT(err_set(ENOENT, "open '%s'", "/x"), -ENOENT);
	CHECK_STR(err_msg(), "open '/x': No such file or directory");
	CHECK_INT(err_set(0, "config.json: %s: bad", "process"), -EINVAL);
	CHECK_STR(err_msg(), "config.json: process: bad");
	/* a refusal says why itself: no strerror, and the errno it is given */
	CHECK_INT(err_refuse(EBUSY, "instance '%s' is running", "web"), -EBUSY);
	CHECK_STR(err_msg(), "instance 'web' is running");
	CHECK_INT(err_refuse(0, "no errno"), -EINVAL);
}

static void test_wrap(void)
{
	err_set(EACCES, "open '/f'");
	CHECK_INT(err_wrap(-EACCES, "instance '%s'", "a"), -EACCES);
	CHECK_STR(err_msg(), "instance 'a': open '/f': Permission denied");
	/* wrapping nothing still says what failed */
	err_clear();
	CHECK_INT(err_wrap(-EIO, "read '%s'", "/g"), -EIO);
	CHECK_STR(err_msg(), "read '/g': Input/output error");
	/* a long message is cut, never overflows */
	char big[8000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	err_set(0, "%s", big);
	err_wrap(-EINVAL, "%s", big);
	CHECK(strlen(err_msg()) < 4096);
}

static void test_save_restore(void)
{
	err_set(ENOSPC, "write '%s'", "/h");
	err_saved s = err_save();
	err_set(EPERM, "cleanup");
	CHECK_INT(err_restore(&s, -ENOSPC), -ENOSPC);
	CHECK_STR(err_msg(), "write '/h': No space left on device");
	CHECK(s.msg == NULL);
	/* nothing saved: restore leaves the slot alone */
	err_clear();
	s = err_save();
	err_set(0, "later");
	CHECK_INT(err_restore(&s, 0), 0);
	CHECK_STR(err_msg(), "later");
}

static void *other_thread(void *arg)
{
	err_set(0, "from the other thread");
	return NULL;
}

static void test_thread_local(void)
{
	err_set(0, "main");
	pthread_t t;
	pthread_create(&t, NULL, other_thread, NULL);
	pthread_join(t, NULL);
	CHECK_STR(err_msg(), "main");
}

int main(void)
{
	test_set_and_refuse();
	test_wrap();
	test_save_restore();
	test_thread_local();
	return unit_done("test-err");
}
