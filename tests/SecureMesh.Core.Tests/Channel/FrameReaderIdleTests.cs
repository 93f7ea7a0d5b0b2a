using System.Net;
using System.Net.Sockets;
using SecureMesh.Core.Channel;

namespace SecureMesh.Core.Tests.Channel;

/// <summary>Issue 16 (idle memory): a connection with nothing to read holds no 256 KiB frame buffer.</summary>
public sealed class FrameReaderIdleTests
{
    [Fact]
    public async Task An_idle_tcp_connection_gives_its_buffer_back_and_reads_the_next_frames_whole()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new TcpClient();
        await client.ConnectAsync((IPEndPoint)listener.LocalEndpoint, TestNet.Timeout());
        using var server = await listener.AcceptTcpClientAsync(TestNet.Timeout());
        var send = client.GetStream();
        using var reader = new FrameReader(server.GetStream());

        await send.WriteAsync(new byte[] { 0, 3, 1, 2, 3 }, TestNet.Timeout());
        Assert.Equal(new byte[] { 1, 2, 3 }, (await reader.ReadFrameAsync(TestNet.Timeout()))!.Value.ToArray());
        Assert.True(reader.HoldsBuffer);

        // Nothing more is sent: the next read waits without a buffer.
        var next = reader.ReadFrameAsync(TestNet.Timeout()).AsTask();
        await WaitUntilAsync(() => !reader.HoldsBuffer);
        Assert.False(next.IsCompleted);

        // A frame arriving in two pieces, the second after a pause, still comes out whole.
        var body = Enumerable.Range(0, 40_000).Select(i => (byte)i).ToArray();
        await send.WriteAsync(new byte[] { 40_000 >> 8, 40_000 & 0xFF }, TestNet.Timeout());
        await send.WriteAsync(body.AsMemory(0, 10_000), TestNet.Timeout());
        await Task.Delay(50);
        await send.WriteAsync(body.AsMemory(10_000), TestNet.Timeout());
        Assert.Equal(body, (await next.WaitAsync(TestNet.Patience))!.Value.ToArray());
        Assert.True(reader.HoldsBuffer);

        // The end of the stream while idle is a clean end.
        client.Client.Shutdown(SocketShutdown.Send);
        Assert.Null(await reader.ReadFrameAsync(TestNet.Timeout()));
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TestNet.Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the reader kept its buffer while idle");
            await Task.Delay(10);
        }
    }
}
