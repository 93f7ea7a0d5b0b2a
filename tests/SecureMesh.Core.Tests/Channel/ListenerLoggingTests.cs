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

    private static bool s_allow = true;
}
