using Microsoft.Extensions.Time.Testing;
using SecureMesh.Core.Libp2p.Ping;

namespace SecureMesh.Core.Tests.Libp2p;

public class PingTests
{
    private static CancellationToken Patience => new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token;

    [Fact]
    public async Task Pings_on_one_stream_are_echoed_until_the_dialer_closes_it()
    {
        await using var pair = await StreamPair.OpenAsync();
        var service = new PingService();
        var serve = service.ServeAsync(pair.B, Patience);
        for (var i = 0; i < 5; i++)
        {
            var rtt = await service.PingAsync(pair.A, Patience);
            Assert.True(rtt >= TimeSpan.Zero);
        }
        pair.SocketA.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        Assert.Equal(5, await serve);
    }

    [Fact]
    public async Task A_wrong_echo_is_a_protocol_error()
    {
        await using var pair = await StreamPair.OpenAsync();
        var ping = new PingService().PingAsync(pair.A, Patience);
        var payload = await Bytes.ReadExactlyAsync(pair.B, PingService.PayloadSize, Patience);
        payload[7] ^= 1;
        await pair.B.WriteAsync(payload, Patience);
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => ping);
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
    }

    [Fact]
    public async Task Every_ping_carries_fresh_random_bytes()
    {
        await using var pair = await StreamPair.OpenAsync();
        var service = new PingService();
        var serve = service.ServeAsync(pair.B, Patience);
        var first = service.PingAsync(pair.A, Patience);
        await first;
        // Replaying the previous answer must not pass for the next ping.
        var replayer = Task.Run(async () =>
        {
            await using var inner = await StreamPair.OpenAsync();
            var ping = service.PingAsync(inner.A, Patience);
            var sent = await Bytes.ReadExactlyAsync(inner.B, 32, Patience);
            await inner.B.WriteAsync(sent, Patience);
            await ping;
            var ping2 = service.PingAsync(inner.A, Patience);
            _ = await Bytes.ReadExactlyAsync(inner.B, 32, Patience);
            await inner.B.WriteAsync(sent, Patience);
            return await Assert.ThrowsAsync<SecureMeshException>(() => ping2);
        });
        Assert.Equal(SecureMeshErrorKind.Protocol, (await replayer).Kind);
        pair.SocketA.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        Assert.Equal(1, await serve);
    }

    [Fact]
    public async Task A_stream_closed_without_an_answer_is_a_network_error_and_a_cut_ping_is_a_protocol_error()
    {
        await using var pair = await StreamPair.OpenAsync();
        var ping = new PingService().PingAsync(pair.A, Patience);
        await Bytes.ReadExactlyAsync(pair.B, 32, Patience);
        pair.SocketB.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        Assert.Equal(SecureMeshErrorKind.Network, (await Assert.ThrowsAsync<SecureMeshException>(() => ping)).Kind);

        await using var pair2 = await StreamPair.OpenAsync();
        var serve = new PingService().ServeAsync(pair2.B, Patience);
        await pair2.A.WriteAsync(new byte[10], Patience);
        pair2.SocketA.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        Assert.Equal(SecureMeshErrorKind.Protocol, (await Assert.ThrowsAsync<SecureMeshException>(() => serve)).Kind);
    }

    [Fact]
    public async Task A_ping_flood_is_paced_not_buffered()
    {
        var time = new FakeTimeProvider();
        var service = new PingService(new PingServiceOptions { Burst = 3, PingsPerSecond = 1, TimeProvider = time });
        await using var pair = await StreamPair.OpenAsync();
        var serve = service.ServeAsync(pair.B, Patience);
        // Ten pings at once: the burst of three is answered at once, the fourth only when a second has passed.
        await pair.A.WriteAsync(new byte[32 * 10], Patience);
        await Bytes.ReadExactlyAsync(pair.A, 32 * 3, Patience);
        var fourth = Bytes.ReadExactlyAsync(pair.A, 32, Patience);
        await Task.Delay(200);
        Assert.False(fourth.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        await fourth.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(serve.IsCompleted);
    }

    [Fact]
    public async Task An_idle_ping_stream_is_ended()
    {
        var time = new FakeTimeProvider();
        var service = new PingService(new PingServiceOptions { IdleTimeout = TimeSpan.FromSeconds(60), TimeProvider = time });
        await using var pair = await StreamPair.OpenAsync();
        var serve = service.ServeAsync(pair.B, Patience);
        await Task.Delay(50);
        time.Advance(TimeSpan.FromSeconds(61));
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => serve.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
        Assert.Contains("idle", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_ping_that_is_never_answered_times_out()
    {
        var time = new FakeTimeProvider();
        await using var pair = await StreamPair.OpenAsync();
        var ping = new PingService(new PingServiceOptions { PingTimeout = TimeSpan.FromSeconds(10), TimeProvider = time }).PingAsync(pair.A, Patience);
        await Bytes.ReadExactlyAsync(pair.B, 32, Patience);
        time.Advance(TimeSpan.FromSeconds(11));
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => ping.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("timed out", e.Message, StringComparison.Ordinal);
    }
}
