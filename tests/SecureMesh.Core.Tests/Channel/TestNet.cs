namespace SecureMesh.Core.Tests.Channel;

/// <summary>Time limits for the channel tests on real sockets (the connection attacks live in SecureMesh.Node.Tests/Connections).</summary>
internal static class TestNet
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    public static CancellationToken Timeout(double seconds = 10) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;
}
