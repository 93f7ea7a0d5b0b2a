using Microsoft.Extensions.Logging;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Channel;

/// <summary>Issue 15: a session the peer ends cleanly is ordinary life, logged at Information; a broken one stays a warning.</summary>
public class CloseLoggingTests
{
    private sealed class LevelLogger : ILogger
    {
        public List<(LogLevel Level, int Id, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add((logLevel, eventId.Id, formatter(state, exception)));
            }
        }
    }

    [Fact]
    public async Task A_clean_close_by_the_peer_is_logged_at_information_not_as_a_warning()
    {
        using var server = NodeIdentity.Generate();
        using var client = NodeIdentity.Generate();
        var logger = new LevelLogger();
        await using var listener = SecureListener.Start(TestNet.Loopback, server, TestNet.ListenerOptions());
        await using var dialled = await SecureChannel.DialAsync(client, listener.LocalEndPoint, server.PeerId, new SecureChannelOptions { Logger = logger }, TestNet.Timeout());
        var accepted = await listener.AcceptAsync(TestNet.Timeout());
        await accepted.SendAsync("bye"u8.ToArray(), TestNet.Timeout());
        Assert.Equal("bye"u8.ToArray(), await dialled.ReceiveAsync(TestNet.Timeout()));
        await accepted.DisposeAsync();

        var e = await Assert.ThrowsAsync<SecureMeshException>(async () => await dialled.ReceiveAsync(TestNet.Timeout()));
        Assert.Equal(SecureMeshErrorKind.Network, e.Kind);
        lock (logger.Entries)
        {
            var ended = Assert.Single(logger.Entries, x => x.Message.Contains("the peer closed the connection", StringComparison.Ordinal));
            Assert.Equal(LogLevel.Information, ended.Level);
            Assert.DoesNotContain(logger.Entries, x => x.Level >= LogLevel.Warning);
        }
    }

    [Fact]
    public async Task A_connection_cut_inside_a_message_is_still_a_warning()
    {
        using var server = NodeIdentity.Generate();
        using var client = NodeIdentity.Generate();
        var logger = new LevelLogger();
        await using var listener = SecureListener.Start(TestNet.Loopback, server, TestNet.ListenerOptions());
        await using var dialled = await SecureChannel.DialAsync(client, listener.LocalEndPoint, server.PeerId, new SecureChannelOptions { Logger = logger }, TestNet.Timeout());
        var accepted = await listener.AcceptAsync(TestNet.Timeout());
        // A length header promising 100 bytes, then the close: the message is cut part-way.
        await accepted.SendRawFrameForTestAsync(new byte[] { 0, 0, 0, 100, 1, 2 }, TestNet.Timeout());
        await accepted.DisposeAsync();

        await Assert.ThrowsAsync<SecureMeshException>(async () => await dialled.ReceiveAsync(TestNet.Timeout()));
        lock (logger.Entries)
        {
            Assert.Contains(logger.Entries, x => x.Level == LogLevel.Warning && x.Id == 3004);
        }
    }
}
