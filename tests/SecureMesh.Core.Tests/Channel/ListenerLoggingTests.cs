using Microsoft.Extensions.Logging;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Channel;

public class ListenerLoggingTests
{
    private sealed class ListLogger : ILogger
    {
        public List<(EventId Id, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add((eventId, formatter(state, exception)));
            }
        }
    }

    [Fact]
    public async Task Failures_and_refusals_are_logged_with_a_reason()
    {
        using var server = NodeIdentity.Generate();
        var logger = new ListLogger();
        var options = new SecureListenerOptions
        {
            Logger = logger,
            AddressFilter = _ => Volatile.Read(ref s_allow),
        };
        await using var listener = SecureListener.Start(TestNet.Loopback, server, options);

        using (var raw = await TestNet.ConnectRawAsync(listener.LocalEndPoint))
        {
            await raw.SendAsync(new byte[] { 0, 3, 1, 2, 3 });
            Assert.True(await TestNet.WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
        }
        await TestNet.WaitUntilAsync(() => listener.FailedHandshakes == 1, "the failure");

        Volatile.Write(ref s_allow, false);
        using (var refused = await TestNet.ConnectRawAsync(listener.LocalEndPoint))
        {
            Assert.True(await TestNet.WaitForCloseAsync(refused, TimeSpan.FromSeconds(3)));
        }
        await TestNet.WaitUntilAsync(() => listener.RefusedConnections == 1, "the refusal");
        Volatile.Write(ref s_allow, true);

        lock (logger.Entries)
        {
            Assert.Contains(logger.Entries, e => e.Id.Id == 3002 && e.Message.Contains("handshake message 1 is malformed", StringComparison.Ordinal));
            Assert.Contains(logger.Entries, e => e.Id.Id == 3003 && e.Message.Contains("address filtered", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_flood_of_garbage_connections_writes_a_bounded_number_of_lines_and_then_a_count()
    {
        using var server = NodeIdentity.Generate();
        var logger = new ListLogger();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var options = new SecureListenerOptions { Logger = logger, FailureLog = new Core.LogThrottle(time, burst: 5, TimeSpan.FromSeconds(10)) };
        await using var listener = SecureListener.Start(TestNet.Loopback, server, options);

        async Task FloodAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                using var raw = await TestNet.ConnectRawAsync(listener.LocalEndPoint);
                await raw.SendAsync(new byte[] { 0, 3, 1, 2, 3 });
                Assert.True(await TestNet.WaitForCloseAsync(raw, TimeSpan.FromSeconds(3)));
            }
        }

        await FloodAsync(40);
        await TestNet.WaitUntilAsync(() => listener.FailedHandshakes == 40, "the failures");
        int Lines(int id)
        {
            lock (logger.Entries)
            {
                return logger.Entries.Count(e => e.Id.Id == id);
            }
        }
        Assert.Equal(5, Lines(3002));
        Assert.Equal(0, Lines(3007));

        // The next window reports what the last one dropped, once, and logs again.
        time.Advance(TimeSpan.FromSeconds(11));
        await FloodAsync(1);
        await TestNet.WaitUntilAsync(() => listener.FailedHandshakes == 41, "the next failure");
        Assert.Equal(6, Lines(3002));
        lock (logger.Entries)
        {
            var summary = Assert.Single(logger.Entries, e => e.Id.Id == 3007);
            Assert.StartsWith("35 more failed or refused connections", summary.Message, StringComparison.Ordinal);
        }
    }

    private static bool s_allow = true;
}
