using System.Reflection;
using System.Runtime.CompilerServices;
using SecureMesh.Node;
using SecureMesh.Node.Control;

namespace SecureMesh.Cli.Tests;

/// <summary>Issue 16: the CLI (assembly <c>securemesh</c>) uses only the public API of the node, storage and core libraries.</summary>
public sealed class PublicContractTests
{
    public static TheoryData<string> Libraries => new()
    {
        typeof(Core.SecureMeshException).Assembly.GetName().Name!,
        typeof(Storage.SecureMeshDatabase).Assembly.GetName().Name!,
        typeof(MeshHost).Assembly.GetName().Name!,
    };

    [Theory]
    [MemberData(nameof(Libraries))]
    public void No_library_lets_the_cli_see_its_internals(string library)
    {
        var assembly = Assembly.Load(library);
        var friends = assembly.GetCustomAttributes<InternalsVisibleToAttribute>().Select(a => a.AssemblyName).ToList();

        Assert.NotEmpty(friends); // the tests still see them
        Assert.DoesNotContain("securemesh", friends, StringComparer.OrdinalIgnoreCase);
    }

    [Fact]
    public void The_control_contract_the_cli_calls_is_public()
    {
        Type[] contract = [typeof(INodeControl), typeof(ITransferControl), typeof(IGroupControl), typeof(NodeControl), typeof(MeshHost), typeof(MeshHostOptions)];
        Assert.All(contract, t => Assert.True(t.IsPublic, $"{t.Name} is not public"));
        // Every type a contract interface takes or returns is public too (records such as PeerInfo, DownloadInfo).
        foreach (var method in contract.Where(t => t.IsInterface).SelectMany(t => t.GetMethods()))
        {
            foreach (var type in method.GetParameters().Select(p => p.ParameterType).Append(method.ReturnType).SelectMany(Flatten))
            {
                Assert.True(type.IsPublic || type.IsNestedPublic, $"{method.DeclaringType!.Name}.{method.Name} uses {type.Name}, which is not public");
            }
        }
    }

    private static IEnumerable<Type> Flatten(Type type) =>
        type.IsGenericType ? type.GetGenericArguments().SelectMany(Flatten).Prepend(type.GetGenericTypeDefinition()) : [type.HasElementType ? type.GetElementType()! : type];
}
