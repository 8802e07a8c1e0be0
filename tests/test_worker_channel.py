"""The worker's script channel: scripts sent ahead run in order, and run again when their
reply was an unknown script or was lost with the connection."""

from __future__ import annotations

import os
import threading

import redis

from flask_jobs.worker.scripts import Channel, Script

#: Appends its argument to a list and returns the list's length.
APPEND = "return redis.call('RPUSH', KEYS[1], ARGV[1])"


def test_scripts_sent_ahead_run_in_order_before_the_next_call(redis_client: redis.Redis) -> None:
    channel = Channel(redis_client)
    append = Script(channel, APPEND)
    for n in range(3):
        append.send(["log"], [f"ahead-{n}"])
    assert append(["log"], ["waited"]) == 4  # the three sent ahead ran first, in order
    assert redis_client.lrange("log", 0, -1) == [b"ahead-0", b"ahead-1", b"ahead-2", b"waited"]
    channel.close()


def test_a_script_redis_forgot_is_loaded_and_run_again(redis_client: redis.Redis) -> None:
    channel = Channel(redis_client)
    append = Script(channel, APPEND)
    append(["log"], ["loaded"])
    redis_client.script_flush()
    append.send(["log"], ["after a flush"])  # NOSCRIPT comes back for it: it runs again
    channel.settle()
    assert redis_client.lrange("log", 0, -1) == [b"loaded", b"after a flush"]
    channel.close()


def test_a_reply_lost_with_the_connection_runs_the_script_again(
    redis_client: redis.Redis,
) -> None:
    channel = Channel(redis_client)
    append = Script(channel, APPEND)
    append(["log"], ["first"])
    mine = channel._connection()
    # The script goes out, then the connection dies before its reply is read: settling
    # runs it again on a new connection (the worker's scripts write the same twice).
    append.send(["log"], ["sent ahead"])
    mine.disconnect()
    channel.settle()
    assert redis_client.lrange("log", 0, -1)[-1] == b"sent ahead"
    assert redis_client.llen("log") in (2, 3)  # once or twice, never lost
    channel.close()


def test_each_thread_and_a_forked_child_use_a_connection_of_their_own(
    redis_client: redis.Redis,
) -> None:
    channel = Channel(redis_client)
    mine = channel._connection()
    theirs: list[object] = []
    thread = threading.Thread(target=lambda: theirs.append(channel._connection()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a connection of its own, working
        ok = channel._connection() is not mine and Script(channel, APPEND)(["log"], ["c"]) == 1
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert redis_client.lrange("log", 0, -1) == [b"c"]
    channel.close()
