using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>The download's request pipeline per peer (<see cref="DownloadLanes"/>, Transfer README, session 9).</summary>
public sealed class PipelineTests
{
    [Fact]
    public async Task Lanes_verifying_and_writing_replies_do_not_hold_back_the_peers_next_requests_and_hold_at_most_twice_the_depth()
    {
        const int depth = 4;
        var served = 0;
        var held = 0;
        using var writes = new ManualResetEventSlim(false);
        await using var seeder = TransferNode.Start(TransferNode.Fast(o =>
        {
            o.Depth = depth;
            o.Served = (_, _, _) => Interlocked.Increment(ref served);
        }));
        await using var downloader = TransferNode.Start(TransferNode.Fast(o =>
        {
            o.Depth = depth;
            o.ChunkTimeout = TimeSpan.FromSeconds(30);
            // Every lane stops between verifying its chunk and writing it, as a slow disk would hold it.
            o.Verified = _ =>
            {
                Interlocked.Increment(ref held);
                writes.Wait(TimeSpan.FromSeconds(60));
            };
        }));
        var path = seeder.WriteFile("pipeline.bin", 64 * TransferNode.ChunkSize);
        var id = await seeder.ShareAsync(path);
        await downloader.ConnectAsync(seeder);

        var handle = downloader.Transfer.StartDownload(id);
        // With one lane per request, `depth` replies held before their writes left no request out: the peer served
        // `depth` chunks and waited. Now a reply's request slot is free once it is in, so `depth` more are requested.
        await Wait.UntilAsync(() => Volatile.Read(ref held) == 2 * depth, TimeSpan.FromSeconds(30), "twice the depth of replies held before their writes");
        // And no more: each lane holds one reply, so the replies waiting for the disk are bounded.
        await Task.Delay(500);
        Assert.Equal(2 * depth, Volatile.Read(ref held));
        Assert.Equal(2 * depth, Volatile.Read(ref served));

        writes.Set();
        var result = await handle.Completion.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(result.Path!));
        Assert.Equal(64, Volatile.Read(ref held));
    }
}
