using System.Buffers;
using SecureMesh.Core.Content;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Network;
using SecureMesh.Node.Tests.Connections;
using SecureMesh.Node.Transfer;
using static SecureMesh.Node.Tests.Connections.TransportKit;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// Chunk replies received straight into aligned blocks (issue 20): a message placed by its first bytes into a buffer
/// of the receiver's choosing (MessageStream), a block offered once per request and decided once between the receive
/// loop and the lane (ChunkDestination), and blocks that go back to their pool exactly once.
/// </summary>
public sealed class ChunkBufferTests : TransportTestBase
{
    private const int Chunk = 64 * 1024;
    private const int Align = 4096;

    /// <summary>A buffer at an odd offset of a larger array, to see that the message went where the placement said.</summary>
    private sealed class Placed(int length) : IMemoryOwner<byte>
    {
        public byte[] Array { get; } = new byte[length + 7];

        public int Disposed;

        public Memory<byte> Memory => Array.AsMemory(7, length);

        public void Dispose() => Interlocked.Increment(ref Disposed);
    }

    [Fact]
    public async Task A_placement_sees_each_message_s_first_bytes_and_length_and_the_message_lands_in_its_buffer()
    {
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync();
        int[] sizes = [1, 5, MessageStream.PeekLength - 1, MessageStream.PeekLength, MessageStream.PeekLength + 1, 4000, 70_000, 1_100_000];
        var sent = sizes.Select((n, i) =>
        {
            var m = new byte[n];
            new Random(i).NextBytes(m);
            return m;
        }).ToList();
        var sender = Task.Run(async () =>
        {
            foreach (var m in sent)
            {
                await client.SendAsync(m, Timeout());
            }
        });
        foreach (var (expected, i) in sent.Select((m, i) => (m, i)))
        {
            Placed? placed = null;
            byte[]? head = null;
            var seenLength = -1;
            // Every other message is left to the pooled default.
            using var received = await server.ReceiveAsync((h, length) =>
            {
                head = h.ToArray();
                seenLength = length;
                return i % 2 == 0 ? placed = new Placed(length) : null;
            }, Timeout());
            Assert.Equal(expected.Length, seenLength);
            Assert.Equal(expected.AsSpan(0, Math.Min(expected.Length, MessageStream.PeekLength)).ToArray(), head);
            Assert.True(received!.Memory.Span.SequenceEqual(expected));
            if (placed is not null)
            {
                Assert.Same(placed, received);
                Assert.True(placed.Array.AsSpan(7, expected.Length).SequenceEqual(expected));
            }
        }
        await sender;
    }

    [Fact]
    public async Task A_placement_that_returns_a_buffer_of_another_length_ends_the_stream_and_the_buffer_is_disposed()
    {
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync();
        await client.SendAsync(new byte[100], Timeout());
        Placed? wrong = null;
        await Assert.ThrowsAnyAsync<Core.SecureMeshException>(async () => await server.ReceiveAsync((_, length) => wrong = new Placed(length - 1), Timeout()));
        Assert.Equal(1, wrong!.Disposed);
        Assert.NotNull(server.ClosedReason);
    }

    [Fact]
    public async Task A_stream_cut_inside_a_placed_message_disposes_the_buffer()
    {
        await using var pair = await MuxedPair.OpenAsync(_client, Transport, _server);
        var (client, server) = await pair.OpenMessageStreamsAsync();
        // A length that promises more than follows, then the end of the stream.
        var truncated = new byte[3 + 1000];
        Varint.Write(truncated, 5000);
        await client.Stream.WriteAsync(truncated.AsMemory(0, 2 + 1000), Timeout());
        await ((Core.Libp2p.Yamux.YamuxStream)client.Stream).CloseWriteAsync(Timeout());
        Placed? placed = null;
        await Assert.ThrowsAnyAsync<Core.SecureMeshException>(async () => await server.ReceiveAsync((_, length) => placed = new Placed(length), Timeout()));
        Assert.Equal(1, placed!.Disposed);
    }

    [Fact]
    public void A_claimed_block_holds_the_message_with_the_chunk_on_the_alignment_boundary_and_goes_back_once_when_the_reply_is_disposed()
    {
        using var pool = new ChunkBufferPool(Chunk, Align);
        var into = new ChunkDestination(pool.Rent());
        var headerLength = 9;
        var messageLength = headerLength + Chunk + 1 + (3 * 32);
        var claim = into.TryClaim(headerLength, messageLength);
        Assert.NotNull(claim);
        Assert.Equal(messageLength, claim.Memory.Length);
        unsafe
        {
            using var pin = claim.Memory.Pin();
            Assert.Equal(0, (long)((nuint)pin.Pointer + (nuint)headerLength) % Align);
        }
        // Once claimed it is the reply's: a second claim (a duplicate reply) and the lane's withdrawal leave it alone.
        Assert.Null(into.TryClaim(headerLength, messageLength));
        into.Withdraw();
        Assert.Equal(0, pool.Pooled);
        claim.Dispose();
        claim.Dispose();
        Assert.Equal(1, pool.Pooled);
        Assert.Equal(1, pool.Live);
    }

    [Fact]
    public void A_withdrawn_offer_is_never_claimed_so_a_late_reply_cannot_land_in_a_block_someone_else_holds()
    {
        using var pool = new ChunkBufferPool(Chunk, Align);
        var block = pool.Rent();
        var first = new ChunkDestination(block);
        first.Withdraw();
        Assert.Equal(1, pool.Pooled);
        // The same block, rented again for another request.
        var again = pool.Rent();
        Assert.Same(block, again);
        var second = new ChunkDestination(again);
        // The first request's reply comes late: refused, it goes to a pooled buffer instead.
        Assert.Null(first.TryClaim(5, 100));
        Assert.NotNull(second.TryClaim(5, 100));
        first.Withdraw();
        Assert.Equal(0, pool.Pooled);
    }

    [Theory]
    [InlineData(Chunk + 1, 9)] // more chunk bytes than the block has room for
    [InlineData(100, Align + 1)] // a header longer than the room before the boundary
    [InlineData(10, 11)] // a message shorter than its own header
    public void A_reply_that_does_not_fit_is_not_claimed_and_the_lane_gets_the_block_back(int dataAndTail, int headerLength)
    {
        using var pool = new ChunkBufferPool(Chunk, Align);
        var into = new ChunkDestination(pool.Rent());
        var messageLength = dataAndTail + ChunkBufferPool.TailRoom + headerLength;
        if (headerLength > dataAndTail)
        {
            messageLength = dataAndTail;
        }
        Assert.Null(into.TryClaim(headerLength, messageLength));
        into.Withdraw();
        Assert.Equal(1, pool.Pooled);
    }

    [Fact]
    public async Task Claims_racing_withdrawals_give_every_block_back_exactly_once()
    {
        using var pool = new ChunkBufferPool(Chunk, Align);
        const int Rounds = 500;
        var offers = new ChunkDestination[Rounds];
        var claims = new IMemoryOwner<byte>?[Rounds];
        using var start = new Barrier(2);
        // The receive loop's side and the lane's side of each request, started together.
        var receiver = Task.Factory.StartNew(() =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                start.SignalAndWait();
                claims[i] = Volatile.Read(ref offers[i])!.TryClaim(5, 1000);
                // A claimed block is the reply's alone: write all of it, as the receive loop would.
                claims[i]?.Memory.Span.Fill((byte)i);
            }
        }, TaskCreationOptions.LongRunning);
        var lane = Task.Factory.StartNew(() =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                Volatile.Write(ref offers[i], new ChunkDestination(pool.Rent()));
                start.SignalAndWait();
                if (i % 3 == 0)
                {
                    Thread.SpinWait(50);
                }
                offers[i].Withdraw();
            }
        }, TaskCreationOptions.LongRunning);
        await Task.WhenAll(receiver, lane);
        foreach (var c in claims)
        {
            c?.Dispose();
        }
        // Every block is back in the pool: none lost, none twice (a block returned twice would be pooled twice).
        Assert.Equal(pool.Live, pool.Pooled);
        Assert.InRange(pool.Live, 1, ChunkBufferPool.MaxPooled);
    }

    [Fact]
    public void Blocks_in_use_when_the_pool_is_disposed_are_freed_when_they_come_back_and_the_pool_keeps_a_bounded_number()
    {
        var pool = new ChunkBufferPool(Chunk, Align);
        var blocks = Enumerable.Range(0, ChunkBufferPool.MaxPooled + 5).Select(_ => pool.Rent()).ToList();
        Assert.Equal(ChunkBufferPool.MaxPooled + 5, pool.Live);
        foreach (var b in blocks.Skip(1))
        {
            b.Return();
        }
        Assert.Equal(ChunkBufferPool.MaxPooled, pool.Pooled);
        Assert.Equal(ChunkBufferPool.MaxPooled + 1, pool.Live);
        pool.Dispose();
        Assert.Equal(1, pool.Live);
        Assert.Equal(1, pool.Arenas);
        blocks[0].Return();
        Assert.Equal(0, pool.Live);
        Assert.Equal(0, pool.Arenas);
        Assert.Throws<ObjectDisposedException>(() => pool.Rent());
    }

    [Fact]
    public unsafe void Blocks_are_carved_back_to_back_from_huge_page_aligned_arenas_each_released_with_its_last_block()
    {
        const int Chunk1MiB = 1 << 20;
        var pool = new ChunkBufferPool(Chunk1MiB, Align);
        var stride = (Align + Chunk1MiB + ChunkBufferPool.TailRoom + Align - 1) / Align * Align;
        const int perArena = ChunkBufferPool.BlocksPerArena;
        var blocks = Enumerable.Range(0, perArena + 1).Select(_ => pool.Rent()).ToList();
        var addresses = blocks.Select(b =>
        {
            using var pin = b.Memory.Pin();
            return (nuint)pin.Pointer;
        }).ToList();
        // One arena for the first sixteen, a second for the seventeenth; within an arena each block follows the last.
        Assert.Equal(2, pool.Arenas);
        for (var i = 1; i < perArena; i++)
        {
            Assert.Equal(addresses[i - 1] + (nuint)stride, addresses[i]);
            Assert.Same(blocks[0].Arena, blocks[i].Arena);
        }
        Assert.NotSame(blocks[0].Arena, blocks[perArena].Arena);
        Assert.All(addresses, a => Assert.Equal(0u, a % Align));
        if (OperatingSystem.IsLinux())
        {
            // Where transparent huge pages can back it: an arena starts on a 2 MiB boundary, so a chunk's megabyte
            // spans one or two huge pages (one disk request for its direct write, not two).
            Assert.Equal(0u, addresses[0] % (2u << 20));
            Assert.Equal(0u, addresses[perArena] % (2u << 20));
        }
        // The full first arena goes once all its blocks are freed (past the pool's keep, or at its disposal); the
        // second, still being carved, stays until the pool is disposed.
        pool.Dispose();
        foreach (var b in blocks.Take(perArena - 1))
        {
            b.Return();
        }
        Assert.Equal(2, pool.Arenas);
        blocks[perArena - 1].Return();
        Assert.Equal(1, pool.Arenas);
        blocks[perArena].Return();
        Assert.Equal(0, pool.Arenas);
        Assert.Equal(0, pool.Live);
    }

    [Theory]
    [InlineData(64 * 1024, 16)]
    [InlineData(1 << 20, 16)]
    [InlineData(4 << 20, 7)] // 32 MiB at most per arena
    [InlineData(16 << 20, 1)]
    [InlineData(32 << 20, 1)] // one block alone is larger
    public void An_arena_holds_sixteen_blocks_or_as_many_as_fit_in_32_MiB(int chunkSize, int expected)
    {
        using var pool = new ChunkBufferPool(chunkSize, Align);
        var blocks = Enumerable.Range(0, expected + 1).Select(_ => pool.Rent()).ToList();
        Assert.Equal(2, pool.Arenas);
        Assert.Same(blocks[0].Arena, blocks[expected - 1].Arena);
        Assert.NotSame(blocks[0].Arena, blocks[expected].Arena);
        foreach (var b in blocks)
        {
            b.Return();
        }
    }

    [Fact]
    public void A_block_reused_from_the_pool_keeps_its_memory_and_writes_to_one_block_never_reach_its_neighbour()
    {
        using var pool = new ChunkBufferPool(Chunk, Align);
        var a = pool.Rent();
        var b = pool.Rent();
        a.GetSpan().Fill(0xAA);
        b.GetSpan().Fill(0xBB);
        Assert.All(a.GetSpan().ToArray(), x => Assert.Equal(0xAA, x));
        a.Return();
        var again = pool.Rent();
        Assert.Same(a, again);
        Assert.Equal(a.Capacity, again.GetSpan().Length);
        again.GetSpan().Fill(0xCC);
        Assert.All(b.GetSpan().ToArray(), x => Assert.Equal(0xBB, x));
        again.Return();
        b.Return();
    }
}
