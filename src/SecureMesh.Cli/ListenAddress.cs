using SecureMesh.Node;
using SecureMesh.Storage;

namespace SecureMesh.Cli;

/// <summary>Reads the configured listen address without starting anything.</summary>
internal static class ListenAddress
{
    public static string Read(string home) =>
        DatabasePeek.Config(home, NodeSettings.Listen) ?? NodeSettings.DefaultListen;
}
