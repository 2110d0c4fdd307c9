// SPDX-License-Identifier: GPL-2.0
/*
 * lockscope's guest test module: the lock bugs lockdep reports, made on purpose on a stock kernel
 * so that `lockanalyze` must find them in a `lockrec --release --trylock-result` recording.
 *
 * On load (insmod), in about 0.1 s, it makes:
 *  (1) lockscope_irq_lock taken with plain spin_lock() in an hrtimer callback (hardirq context)
 *      and in process context with interrupts on: inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W}.
 *      The timer is finished and cancelled before process context takes the lock, so the
 *      deadlock this describes cannot happen here.
 *  (2) ABBA orders: the kthread lockscope_ab takes lockscope_spin_a then lockscope_spin_b, and
 *      lockscope_mutex_a then lockscope_mutex_b; after it has exited, the kthread lockscope_ba
 *      takes them in the opposite orders. One after the other, so again no real deadlock.
 * Then it stays loaded, doing nothing, until rmmod.
 *
 * Every step is its own noinline function with a different body, so gcc neither folds two of
 * them into one nor turns a final unlock into a tail jump (which would hide the caller from a
 * callchain): each ends with a store after its last unlock.
 */
#include <linux/completion.h>
#include <linux/hrtimer.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>

static DEFINE_SPINLOCK(lockscope_irq_lock);
static DEFINE_SPINLOCK(lockscope_spin_a);
static DEFINE_SPINLOCK(lockscope_spin_b);
static DEFINE_MUTEX(lockscope_mutex_a);
static DEFINE_MUTEX(lockscope_mutex_b);

/* What the locks protect, and which step ran last (the store that ends each step). */
static unsigned long lockscope_counter;
static int lockscope_last_step;

#define LOCKSCOPE_TIMER_FIRES 5
#define LOCKSCOPE_TIMER_PERIOD_MS 10
#define LOCKSCOPE_PROCESS_ACQUISITIONS 3

static struct hrtimer lockscope_timer;
static int lockscope_timer_fired;
static DECLARE_COMPLETION(lockscope_timer_done);
static DECLARE_COMPLETION(lockscope_ab_done);
static DECLARE_COMPLETION(lockscope_ba_done);

/* (1), hardirq side: an hrtimer in HRTIMER_MODE_REL expires in hardirq context. */
static enum hrtimer_restart lockscope_timer_fn(struct hrtimer *timer)
{
	spin_lock(&lockscope_irq_lock);
	lockscope_counter += 1;
	spin_unlock(&lockscope_irq_lock);
	if (++lockscope_timer_fired < LOCKSCOPE_TIMER_FIRES) {
		hrtimer_forward_now(timer, ms_to_ktime(LOCKSCOPE_TIMER_PERIOD_MS));
		return HRTIMER_RESTART;
	}
	complete(&lockscope_timer_done);
	return HRTIMER_NORESTART;
}

/* (1), process side: plain spin_lock() with interrupts on. */
static noinline void lockscope_irq_lock_in_process(void)
{
	spin_lock(&lockscope_irq_lock);
	lockscope_counter += 10;
	spin_unlock(&lockscope_irq_lock);
	WRITE_ONCE(lockscope_last_step, 1);
}

/* (2), the AB order. */
static noinline void lockscope_spin_a_then_b(void)
{
	spin_lock(&lockscope_spin_a);
	spin_lock(&lockscope_spin_b);
	lockscope_counter += 100;
	spin_unlock(&lockscope_spin_b);
	spin_unlock(&lockscope_spin_a);
	WRITE_ONCE(lockscope_last_step, 2);
}

static noinline void lockscope_mutex_a_then_b(void)
{
	mutex_lock(&lockscope_mutex_a);
	mutex_lock(&lockscope_mutex_b);
	lockscope_counter += 1000;
	mutex_unlock(&lockscope_mutex_b);
	mutex_unlock(&lockscope_mutex_a);
	WRITE_ONCE(lockscope_last_step, 3);
}

/* (2), the BA order. */
static noinline void lockscope_spin_b_then_a(void)
{
	spin_lock(&lockscope_spin_b);
	spin_lock(&lockscope_spin_a);
	lockscope_counter += 10000;
	spin_unlock(&lockscope_spin_a);
	spin_unlock(&lockscope_spin_b);
	WRITE_ONCE(lockscope_last_step, 4);
}

static noinline void lockscope_mutex_b_then_a(void)
{
	mutex_lock(&lockscope_mutex_b);
	mutex_lock(&lockscope_mutex_a);
	lockscope_counter += 100000;
	mutex_unlock(&lockscope_mutex_a);
	mutex_unlock(&lockscope_mutex_b);
	WRITE_ONCE(lockscope_last_step, 5);
}

static int lockscope_ab_thread(void *unused)
{
	lockscope_spin_a_then_b();
	lockscope_mutex_a_then_b();
	/* Completes and exits without returning into module text rmmod could have freed. */
	kthread_complete_and_exit(&lockscope_ab_done, 0);
}

static int lockscope_ba_thread(void *unused)
{
	lockscope_spin_b_then_a();
	lockscope_mutex_b_then_a();
	kthread_complete_and_exit(&lockscope_ba_done, 0);
}

static int lockscope_run_thread(int (*fn)(void *), const char *name, struct completion *done)
{
	struct task_struct *thread = kthread_run(fn, NULL, "%s", name);

	if (IS_ERR(thread))
		return PTR_ERR(thread);
	if (!wait_for_completion_timeout(done, msecs_to_jiffies(2000)))
		return -ETIMEDOUT;
	return 0;
}

static int __init lockscope_lockdep_init(void)
{
	int i, err;

	hrtimer_init(&lockscope_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	lockscope_timer.function = lockscope_timer_fn;
	hrtimer_start(&lockscope_timer, ms_to_ktime(LOCKSCOPE_TIMER_PERIOD_MS), HRTIMER_MODE_REL);
	wait_for_completion_timeout(&lockscope_timer_done, msecs_to_jiffies(2000));
	hrtimer_cancel(&lockscope_timer);

	for (i = 0; i < LOCKSCOPE_PROCESS_ACQUISITIONS; i++)
		lockscope_irq_lock_in_process();

	err = lockscope_run_thread(lockscope_ab_thread, "lockscope_ab", &lockscope_ab_done);
	if (!err)
		err = lockscope_run_thread(lockscope_ba_thread, "lockscope_ba", &lockscope_ba_done);
	if (err) {
		pr_err("lockscope_lockdep: a scenario thread failed: %d\n", err);
		return err;
	}
	pr_info("lockscope_lockdep: scenario done (timer fired %d times, counter %lu)\n",
		lockscope_timer_fired, lockscope_counter);
	return 0;
}

static void __exit lockscope_lockdep_exit(void)
{
	hrtimer_cancel(&lockscope_timer);
}

module_init(lockscope_lockdep_init);
module_exit(lockscope_lockdep_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("lockscope guest test: lock bugs lockdep would report, made on purpose");
