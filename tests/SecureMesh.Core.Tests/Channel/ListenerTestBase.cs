using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Channel;

/// <summary>A server identity listening on loopback (5 s handshake deadline) and a client identity, fresh for each test.</summary>
public abstract class ListenerTestBase : IAsyncLifetime
{
    protected readonly NodeIdentity _server = NodeIdentity.Generate();
    protected readonly NodeIdentity _client = NodeIdentity.Generate();
    protected SecureListener _listener = null!;

    public Task InitializeAsync()
    {
        _listener = SecureListener.Start(TestNet.Loopback, _server, TestNet.ListenerOptions(TimeSpan.FromSeconds(5)));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _listener.DisposeAsync();
        _server.Dispose();
        _client.Dispose();
    }
}
