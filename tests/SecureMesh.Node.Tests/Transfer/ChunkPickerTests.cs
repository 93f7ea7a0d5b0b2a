using SecureMesh.Core.Content;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>The swarm's chunk picker alone: no sockets, no files, every rule on its own.</summary>
public sealed class ChunkPickerTests
{
    private static ChunkBitfield Have(long count, params long[] chunks)
    {
        var have = new ChunkBitfield(count);
        foreach (var c in chunks)
        {
            have.Set(c);
        }
        return have;
    }

    private static ChunkBitfield All(long count) => Have(count, [.. Enumerable.Range(0, (int)count).Select(i => (long)i)]);

    /// <summary>Takes chunks for <paramref name="peer"/> until it gets no index, completing none.</summary>
    private static List<long> Drain(ChunkPicker picker, ChunkPicker.Peer peer, int max = 1000)
    {
        var got = new List<long>();
        for (var i = 0; i < max; i++)
        {
            var next = picker.Next(peer);
            if (next < 0)
            {
                break;
            }
            got.Add(next);
        }
        return got;
    }

    private static void Complete(ChunkPicker picker, ChunkPicker.Peer peer, long index)
    {
        Assert.True(picker.MarkDone(index));
        picker.Release(peer, index, succeeded: true);
    }

    [Fact]
    public void Rarest_chunks_go_first_and_ties_in_file_order()
    {
        // Chunks 0..5. Holders: 0:3, 1:1, 2:2, 3:1, 4:3, 5:2.
        var picker = new ChunkPicker(6);
        var peers = picker.Plan([All(6), Have(6, 0, 2, 4, 5), Have(6, 0, 4)]);

        Assert.Equal([1, 3, 2, 5, 0, 4], Drain(picker, peers[0], max: 6));
    }

    [Fact]
    public void A_chunk_only_others_hold_is_left_for_them()
    {
        var picker = new ChunkPicker(4);
        var peers = picker.Plan([Have(4, 0), Have(4, 1, 2, 3)]);

        // Chunk 0 is the rarest with 1..3 (one holder each): file order puts it first, but only peer 0 holds it.
        Assert.Equal([1, 2, 3], Drain(picker, peers[1]));
        Assert.Equal([0], Drain(picker, peers[0]));
    }

    [Fact]
    public void Outside_the_endgame_no_chunk_is_requested_twice()
    {
        const int count = 64;
        var picker = new ChunkPicker(count);
        var peers = picker.Plan([All(count), All(count), Have(count, [.. Enumerable.Range(0, 32).Select(i => (long)i)])]);
        var requested = new HashSet<long>();
        // Round robin, nothing completes: the first 64 requests are 64 different chunks.
        for (var round = 0; requested.Count < count; round++)
        {
            var next = picker.Next(peers[round % 3]);
            Assert.True(next >= 0, "a chunk is left, so a peer holding everything gets one");
            Assert.True(requested.Add(next), $"chunk {next} requested twice before the endgame");
        }
    }

    [Fact]
    public void The_endgame_races_one_other_peer_for_a_chunk_in_flight_never_the_same_one_twice()
    {
        var picker = new ChunkPicker(2);
        var peers = picker.Plan([All(2), All(2), All(2)]);
        var first = Drain(picker, peers[0]);
        Assert.Equal([0, 1], first);

        // Nothing unrequested is left: the second peer duplicates both, the third finds each at two requesters already.
        Assert.Equal([0, 1], Drain(picker, peers[1]));
        Assert.Equal(ChunkPicker.Wait, picker.Next(peers[2]));
        Assert.Equal(ChunkPicker.Wait, picker.Next(peers[0]));

        // One copy arrives: the loser's request ends without a retry, the chunk is never asked again.
        Complete(picker, peers[1], 0);
        Assert.False(picker.MarkDone(0));
        picker.Release(peers[0], 0, succeeded: false);
        Assert.Equal(ChunkPicker.Wait, picker.Next(peers[2])); // only 1 is open, and it has two requesters
        Complete(picker, peers[0], 1);
        picker.Release(peers[1], 1, succeeded: true);

        Assert.True(picker.IsComplete);
        Assert.All(peers, p => Assert.Equal(ChunkPicker.Finished, picker.Next(p)));
    }

    [Fact]
    public void A_failed_chunk_is_retried_first_by_a_peer_that_holds_it()
    {
        var picker = new ChunkPicker(4);
        var peers = picker.Plan([All(4), Have(4, 3)]);
        Assert.Equal(3, picker.Next(peers[1]));
        Assert.Equal(0, picker.Next(peers[0]));

        picker.Release(peers[1], 3, succeeded: false); // a timeout or an error reply

        Assert.Equal(3, picker.Next(peers[0]));
        Assert.Equal(1, picker.Next(peers[0]));
    }

    [Fact]
    public void A_peer_dropped_mid_way_gets_nothing_more_and_its_chunks_go_back_to_the_others()
    {
        var picker = new ChunkPicker(6);
        var peers = picker.Plan([All(6), All(6)]);
        var liar = peers[0];
        var honest = peers[1];
        Assert.Equal([0, 1, 2], Enumerable.Range(0, 3).Select(_ => picker.Next(liar)));
        Assert.Equal(3, picker.Next(honest));

        Assert.True(picker.Drop(liar));
        Assert.False(picker.Drop(liar));
        Assert.Equal(1, picker.LivePeers);
        Assert.Equal(ChunkPicker.Finished, picker.Next(liar));

        // Its three chunks are retried by the honest peer before anything new; its late Release changes nothing.
        picker.Release(liar, 1, succeeded: false);
        Assert.Equal([0, 1, 2, 4, 5], Drain(picker, honest));
        Assert.Equal(ChunkPicker.Wait, picker.Next(honest));
    }

    [Fact]
    public void When_every_peer_is_gone_every_lane_is_told_to_finish_and_the_file_stays_incomplete()
    {
        var picker = new ChunkPicker(3);
        var peers = picker.Plan([All(3), All(3)]);
        var a = picker.Next(peers[0]);
        Complete(picker, peers[0], a);
        var b = picker.Next(peers[1]);

        picker.Drop(peers[1]);
        Assert.Equal(b, picker.Next(peers[0])); // handed back by the drop
        picker.Release(peers[0], b, succeeded: false);
        picker.Drop(peers[0]);

        Assert.NotEqual(a, b);
        Assert.Equal(0, picker.LivePeers);
        Assert.All(peers, p => Assert.Equal(ChunkPicker.Finished, picker.Next(p)));
        Assert.False(picker.IsComplete);
        Assert.Equal(1, picker.DoneCount);
    }

    [Fact]
    public void The_last_live_peer_finishes_when_the_rest_is_held_by_nobody()
    {
        var picker = new ChunkPicker(3);
        var peers = picker.Plan([Have(3, 0, 1)]);
        Complete(picker, peers[0], picker.Next(peers[0]));
        Complete(picker, peers[0], picker.Next(peers[0]));

        Assert.Equal(ChunkPicker.Finished, picker.Next(peers[0]));
        Assert.Equal(2, picker.DoneCount);
    }

    [Fact]
    public void A_peer_with_nothing_to_fetch_waits_while_another_live_peer_could_still_change_things()
    {
        var picker = new ChunkPicker(2);
        var peers = picker.Plan([Have(2, 0), Have(2, 1)]);
        Complete(picker, peers[0], picker.Next(peers[0]));

        Assert.Equal(ChunkPicker.Wait, picker.Next(peers[0]));
        picker.Drop(peers[1]);
        Assert.Equal(ChunkPicker.Finished, picker.Next(peers[0]));
    }

    [Fact]
    public void Chunks_verified_by_an_earlier_run_are_never_asked_for()
    {
        var picker = new ChunkPicker(5, [0, 2, 4, 99, -1]);
        var peers = picker.Plan([All(5)]);

        Assert.Equal(3, picker.DoneCount);
        Assert.Equal([1, 3], Drain(picker, peers[0]));
    }

    [Fact]
    public void A_peer_that_joins_late_fetches_from_the_same_order()
    {
        var picker = new ChunkPicker(3);
        var first = picker.Plan([Have(3, 0)]);
        Assert.Equal(0, picker.Next(first[0]));

        var late = picker.Join(All(3));

        Assert.Equal([1, 2], Drain(picker, late, max: 2));
        Assert.Equal(2, picker.LivePeers);
        Assert.Throws<ArgumentException>(() => picker.Join(All(4)));
    }
}
